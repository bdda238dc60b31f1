"""A throwaway PostgreSQL cluster in a temporary directory, for tests and benchmarks.

    with PgCluster() as cluster:
        url = cluster.create_database("loudou")   # postgres://loudou@127.0.0.1:PORT/loudou
        ...                                         # stopped and deleted on exit

The cluster listens on 127.0.0.1 on a free port (and a Unix socket inside its own
directory), trusts local connections and has a superuser called ``loudou``. It is tuned
for speed, not durability (no fsync). ``initdb`` and ``postgres`` refuse to run as root, so
as root every server command runs as the ``postgres`` system user (``runuser``) on a
directory that user owns; otherwise they run as the current user.

The server runs in its own session, so a Ctrl-C in the terminal does not kill it half-way;
:meth:`PgCluster.stop` (called by the context manager, also after an error or Ctrl-C)
stops it and deletes the directory.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "loudou"
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "128MB",
}


class PgClusterError(RuntimeError):
    """The cluster could not be created, started or used."""


@dataclass(frozen=True)
class PgInstall:
    """Where the server binaries are, and which major version they are."""

    bindir: Path
    version: str  # e.g. "15.14"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _version_of(bindir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def find_postgres() -> PgInstall | None:
    """The newest PostgreSQL server install: ``$LOUDOU_PG_BINDIR``, Debian's
    ``/usr/lib/postgresql/*/bin``, then ``initdb`` on the PATH; None if there is none."""
    candidates: list[Path] = []
    if os.environ.get("LOUDOU_PG_BINDIR"):
        candidates.append(Path(os.environ["LOUDOU_PG_BINDIR"]))
    debian = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    debian.sort(key=lambda p: int(re.sub(r"\D", "", Path(p).parts[-3]) or 0), reverse=True)
    candidates += [Path(p).parent for p in debian]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            version = _version_of(bindir)
            if version:
                return PgInstall(bindir=bindir, version=version)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class PgCluster:
    """A PostgreSQL cluster that lives as long as this object is started."""

    def __init__(self, install: PgInstall | None = None, *, settings: dict | None = None):
        install = install or find_postgres()
        if install is None:
            raise PgClusterError(
                "No PostgreSQL server binaries found (initdb, pg_ctl, postgres). "
                "On Debian: apt-get install -y postgresql"
            )
        self.install = install
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.port: int | None = None
        self.directory: Path | None = None
        self._as_postgres = _is_root()

    # --- paths -----------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def logfile(self) -> Path:
        assert self.directory is not None
        return self.directory / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The connection URL (for ``LOUDOU_DATABASE_URL``) of one database."""
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # --- running server commands ---------------------------------------------------
    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(args, cwd="/", **kwargs)

    def _check(self, result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode != 0:
            log = ""
            if self.directory and self.logfile.exists():
                log = "\n--- server log ---\n" + self.logfile.read_text(errors="replace")[-4000:]
            raise PgClusterError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}{log}"
            )

    # --- life cycle ------------------------------------------------------------------
    def start(self) -> PgCluster:
        """initdb a fresh cluster in a new temporary directory and start the server."""
        if self._as_postgres:
            try:
                import pwd

                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgClusterError(
                    "Running as root, but there is no 'postgres' system user to run the "
                    "server as (install Debian's postgresql package)."
                ) from exc
        self.directory = Path(tempfile.mkdtemp(prefix="loudou-pg-"))
        try:
            if self._as_postgres:
                os.chown(self.directory, pw.pw_uid, pw.pw_gid)
                # The server user must reach its directory through the parents.
                parent = self.directory.parent
                if not os.access(parent, os.X_OK) or (parent.stat().st_mode & 0o001) == 0:
                    raise PgClusterError(
                        f"{parent} is not searchable by the postgres user; set TMPDIR to a "
                        "directory it can reach (e.g. /tmp)."
                    )
            self._check(
                self._run(
                    [
                        self.install.tool("initdb"),
                        "--pgdata",
                        str(self.datadir),
                        "--username",
                        SUPERUSER,
                        "--auth",
                        "trust",
                        "--encoding",
                        "UTF8",
                        "--no-locale",
                        "--no-sync",
                    ]
                ),
                "initdb",
            )
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            self.port = free_port()
            options = [f"-p {self.port}", f"-k {self.directory}"]
            options += [f"-c {key}={value}" for key, value in self.settings.items()]
            result = self._run(
                [
                    self.install.tool("pg_ctl"),
                    "--pgdata",
                    str(self.datadir),
                    "--log",
                    str(self.logfile),
                    "--wait",
                    "--timeout",
                    "60",
                    "-o",
                    " ".join(options),
                    "start",
                ],
                start_new_session=True,  # a Ctrl-C for the tests must not hit the server
            )
            if result.returncode == 0:
                self._wait_ready()
                return
            # Someone may have taken the port between free_port() and the server's bind.
            if attempt == attempts - 1 or "could not bind" not in self._log_tail():
                self._check(result, "pg_ctl start")
        raise PgClusterError("could not start the server")  # pragma: no cover

    def _log_tail(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise PgClusterError(
                        f"server did not accept connections on port {self.port}:\n"
                        + self._log_tail()
                    ) from None
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (if it runs) and delete the directory. Safe to call twice."""
        if self.directory is None:
            return
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run(
                    [
                        self.install.tool("pg_ctl"),
                        "--pgdata",
                        str(self.datadir),
                        "--mode",
                        "immediate",
                        "--wait",
                        "stop",
                    ]
                )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
