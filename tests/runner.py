"""Run every test: quality checks, the suite on SQLite, the suite on PostgreSQL, in Chromium.

    python -m tests.runner [pytest arguments]      (what ``make test`` runs)

Steps, each reported in the summary at the end:

1. quality: ``ruff check .``, ``loudou check``, ``loudou makemigrations --check --dry-run``;
2. pytest on SQLite (the whole suite, browser tests included);
3. pytest on a throwaway PostgreSQL cluster (``loudou.testing.pgcluster``) on 127.0.0.1,
   deleted at the end even after a failure or Ctrl-C — at the same time as step 2 when both
   run (each in its own process, data directory and demo snapshot).

The last line is always ``all: N passed, M failed, K skipped`` over both runs. The exit
status is non-zero if any step failed, if a run collected no tests, or if a database or
the browser was missing while ``LOUDOU_TEST_REQUIRE_ALL=1``.

Environment:
    LOUDOU_TEST_REQUIRE_ALL=1   PostgreSQL and Chromium are required (CI); missing = failure
    LOUDOU_TEST_INSTALL=1       as root, apt-get install what is missing (implied by the above)
    LOUDOU_TEST_DATABASES=sqlite   run only these databases (sqlite, postgres; comma-separated)
    LOUDOU_TEST_QUALITY=0       skip step 1 (development only)
    LOUDOU_TEST_PG_E2E=0        leave the browser tests out of the PostgreSQL run
    LOUDOU_TEST_DATABASE_ONLY=1 leave out the tests that touch no database (set by the
                                runner for PostgreSQL when SQLite runs too; tests/conftest.py)
    LOUDOU_TEST_PARALLEL=0      run SQLite, then PostgreSQL (default: both at once, one per
                                core, the PostgreSQL output shown when it ends)
    LOUDOU_TEST_DEMO_SNAPSHOT_FROM  set by the runner for the PostgreSQL run side by side:
                                its tests needing the demo run last and wait for the SQLite
                                run's snapshot (or for this file: that run ended without one)
    LOUDOU_CHROMIUM, LOUDOU_PG_BINDIR   where Chromium / the PostgreSQL binaries are

This module is also a tiny pytest plugin (``-p tests.runner``): when
``LOUDOU_TEST_RESULTS`` names a file, pytest writes its counts there as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_ENV = "LOUDOU_TEST_RESULTS"
CHROMIUM = os.environ.get("LOUDOU_CHROMIUM", "/usr/bin/chromium")
APT_PACKAGES = {"postgres": ["postgresql"], "chromium": ["chromium", "fonts-wqy-microhei"]}


# --- the pytest plugin side ---------------------------------------------------------------
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Write this run's counts (and those of the browser tests) for the runner."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    stats = terminalreporter.stats
    counts = {key: len(stats.get(key, [])) for key in ("passed", "failed", "error", "skipped")}
    counts["xfailed"] = len(stats.get("xfailed", []))
    counts["xpassed"] = len(stats.get("xpassed", []))
    e2e = {"passed": 0, "failed": 0, "skipped": 0, "skip_reasons": []}
    for key, bucket in (("passed", "passed"), ("failed", "failed"), ("error", "failed")):
        for report in stats.get(key, []):
            if "e2e" in getattr(report, "keywords", {}):
                e2e[bucket] += 1
    for report in stats.get("skipped", []):
        if "e2e" in getattr(report, "keywords", {}):
            e2e["skipped"] += 1
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            if reason not in e2e["skip_reasons"]:
                e2e["skip_reasons"].append(reason)
    counts["e2e"] = e2e
    counts["exitstatus"] = int(exitstatus)
    Path(path).write_text(json.dumps(counts))


# --- the runner side --------------------------------------------------------------------
def flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in ("0", "false", "no", "off")


def say(message: str = "") -> None:
    print(message, flush=True)


def banner(title: str) -> None:
    say()
    say(f"==== {title} " + "=" * max(0, 74 - len(title)))


@dataclass
class Part:
    """One line of the summary."""

    name: str
    ok: bool
    detail: str


@dataclass
class Run:
    """One pytest run and its counts."""

    label: str
    exit_code: int = -1
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    e2e: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and self.passed > 0

    def describe(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        if self.exit_code == 5:
            text += " (no tests ran: exit 5)"
        elif self.exit_code not in (0, 1):
            text += f" (pytest exit {self.exit_code})"
        elif self.exit_code == 1 and self.failed == 0:
            text += " (pytest reported a failure)"
        elif self.passed == 0:
            text += " (nothing passed)"
        return f"{text} in {self.seconds:.0f}s"


def find_chromium() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else None


def install_missing(want_postgres: bool) -> None:
    """As root on Debian, apt-get install PostgreSQL and/or Chromium if they are missing."""
    from loudou.testing.pgcluster import find_postgres

    packages = []
    if want_postgres and find_postgres() is None:
        packages += APT_PACKAGES["postgres"]
    if find_chromium() is None:
        packages += APT_PACKAGES["chromium"]
    if not packages:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say(f"Missing {', '.join(packages)}, and cannot install (needs root and apt-get).")
        return
    banner(f"Installing {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, check=False)


def quality() -> Part:
    """ruff, Django's system checks and the missing-migrations check."""
    banner("Quality: ruff check, loudou check, makemigrations --check")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "LOUDOU_DATABASE_URL": "sqlite:///:memory:"}
    loudou = [sys.executable, "-m", "loudou.cli"]
    if (bin_dir / "loudou").exists():
        loudou = [str(bin_dir / "loudou")]
    ruff = str(bin_dir / "ruff") if (bin_dir / "ruff").exists() else "ruff"
    commands = {
        "ruff check": [ruff, "check", "."],
        "loudou check": [*loudou, "check"],
        "makemigrations --check": [*loudou, "makemigrations", "--check", "--dry-run"],
    }
    failed = []
    for name, command in commands.items():
        say(f"$ {' '.join(command)}")
        if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    if failed:
        return Part("Quality", False, "FAILED: " + ", ".join(failed))
    return Part("Quality", True, "ruff check, loudou check, makemigrations --check: ok")


class PytestProcess:
    """One pytest run in a child process: its output streams to ours, or to ``log`` when
    it runs beside another one (printed whole when it ends, so the two never interleave)."""

    def __init__(self, label: str, env_extra: dict, args: list[str], workdir: Path, log=None):
        self.run = Run(label)
        self.log = log
        self.results = workdir / f"results-{label.split()[0].lower()}.json"
        self.results.unlink(missing_ok=True)
        env = {**os.environ, **env_extra, RESULTS_ENV: str(self.results)}
        command = [sys.executable, "-m", "pytest", "-p", "tests.runner", "--durations=30", *args]
        if log is None:
            banner(f"pytest on {label}")
            say("$ " + " ".join(command))
        else:
            say(f"$ {' '.join(command)}  (output in the log printed when it ends)")
        self.started = time.monotonic()
        output = None if log is None else open(log, "w")  # noqa: SIM115 (closed in wait)
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT if output else None
        )
        self._output = output

    def wait(self) -> Run:
        run = self.run
        run.exit_code = self.process.wait()
        run.seconds = time.monotonic() - self.started
        if self._output is not None:
            self._output.close()
            banner(f"pytest on {run.label} (ran beside the other database)")
            sys.stdout.write(Path(self.log).read_text(errors="replace"))
            sys.stdout.flush()
        if self.results.exists():
            data = json.loads(self.results.read_text())
            run.passed = data["passed"] + data["xpassed"]
            run.failed = data["failed"] + data["error"]
            run.skipped = data["skipped"] + data["xfailed"]
            run.e2e = data["e2e"]
        elif run.exit_code != 0:
            run.failed += 1  # pytest died before it could report (crash, usage error)
        return run

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def run_pytest(label: str, env_extra: dict, args: list[str], workdir: Path) -> Run:
    child = PytestProcess(label, env_extra, args, workdir)
    try:
        return child.wait()
    finally:
        child.stop()


def base_env(workdir: Path) -> dict:
    """A private var/ directory, so that tests never touch the developer's data (one per
    run, so that two runs side by side never share files)."""
    var = workdir / "var"
    (var / "static").mkdir(parents=True, exist_ok=True)
    (var / "media").mkdir(parents=True, exist_ok=True)
    return {
        "LOUDOU_VAR_DIR": str(var),
        "PYTHONDONTWRITEBYTECODE": "1",
        # Built by the first run (the demo takes ~20-50s through the services), reused.
        "LOUDOU_TEST_DEMO_SNAPSHOT": str(workdir / "demo.json"),
    }


def browser_part(runs: list[Run], chromium: str | None, require_all: bool) -> Part:
    name = "Browser (Chromium)"
    if chromium is None:
        detail = f"SKIPPED: no chromium at {CHROMIUM}"
        return Part(name, not require_all, ("FAILED, required: " if require_all else "") + detail)
    ran = [r for r in runs if r.e2e.get("passed") or r.e2e.get("failed")]
    if not ran:
        reasons = sorted({reason for r in runs for reason in r.e2e.get("skip_reasons", [])})
        detail = "SKIPPED: " + ("; ".join(reasons) if reasons else "no browser test selected")
        return Part(name, not require_all, ("FAILED, required: " if require_all else "") + detail)
    per_run = ", ".join(
        f"{r.e2e['passed']} passed"
        + (f", {r.e2e['failed']} failed" if r.e2e["failed"] else "")
        + f" on {r.label}"
        for r in ran
    )
    ok = all(r.e2e["failed"] == 0 for r in ran)
    return Part(name, ok, f"ran {chromium}: {per_run}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    require_all = flag("LOUDOU_TEST_REQUIRE_ALL")
    wanted = {
        d.strip().lower()
        for d in os.environ.get("LOUDOU_TEST_DATABASES", "sqlite,postgres").split(",")
        if d.strip()
    }
    wanted = {"postgres" if d in ("pg", "postgresql") else d for d in wanted}
    unknown = wanted - {"sqlite", "postgres"}
    if unknown:
        say(f"LOUDOU_TEST_DATABASES: unknown {', '.join(sorted(unknown))} (sqlite, postgres)")
        return 2

    # A SIGTERM (CI timeout, kill) unwinds like Ctrl-C, so the cluster is still removed.
    signal.signal(signal.SIGTERM, _interrupt)

    started = time.monotonic()
    parts: list[Part] = []
    runs: list[Run] = []
    interrupted = False
    workdir = Path(tempfile.mkdtemp(prefix="loudou-test-"))
    try:
        if flag("LOUDOU_TEST_INSTALL") or require_all:
            install_missing(want_postgres="postgres" in wanted)
        from loudou.testing.pgcluster import PgCluster, PgClusterError, find_postgres

        chromium = find_chromium()
        say(f"Chromium: {chromium or 'not found at ' + CHROMIUM}")
        postgres = find_postgres()
        say(f"PostgreSQL: {postgres.bindir if postgres else 'no server binaries found'}")

        if flag("LOUDOU_TEST_QUALITY", True):
            parts.append(quality())
        else:
            parts.append(Part("Quality", not require_all, "SKIPPED: LOUDOU_TEST_QUALITY=0"))

        env = base_env(workdir)
        sqlite_url = f"sqlite:///{workdir / 'var' / 'loudou.sqlite3'}"
        sqlite_env = {**env, "LOUDOU_DATABASE_URL": sqlite_url}
        pg_args = list(args)
        if not flag("LOUDOU_TEST_PG_E2E", True):
            pg_args = ["-m", "not e2e", *pg_args]
        side_by_side = (
            {"sqlite", "postgres"} <= wanted
            and postgres is not None
            and flag("LOUDOU_TEST_PARALLEL", True)
        )
        if "sqlite" in wanted and not side_by_side:
            run = run_pytest("SQLite", sqlite_env, args, workdir)
            runs.append(run)
            parts.append(Part("SQLite", run.ok, run.describe()))
        elif "sqlite" not in wanted:
            parts.append(Part("SQLite", not require_all, "SKIPPED: not in LOUDOU_TEST_DATABASES"))

        if "postgres" not in wanted:
            parts.append(
                Part("PostgreSQL", not require_all, "SKIPPED: not in LOUDOU_TEST_DATABASES")
            )
        elif postgres is None:
            detail = "SKIPPED: no PostgreSQL server binaries (apt-get install -y postgresql)"
            if require_all:
                detail = "FAILED, required: " + detail
            parts.append(Part("PostgreSQL", not require_all, detail))
        else:
            name = f"PostgreSQL {postgres.major}"
            banner(f"Starting a throwaway {name} cluster")
            try:
                with PgCluster(postgres) as cluster:
                    url = cluster.create_database("loudou")
                    say(f"{url} in {cluster.directory}")
                    pg_dir = workdir / "pg"
                    pg_env = {**base_env(pg_dir), "LOUDOU_DATABASE_URL": url}
                    if "sqlite" in wanted:
                        # Tests that touch no database ran in the SQLite run already.
                        pg_env["LOUDOU_TEST_DATABASE_ONLY"] = "1"
                    if side_by_side:
                        # Both databases at once, one per core: the PostgreSQL run's output
                        # goes to a log shown when it ends. It runs its tests that need the
                        # demo last, restoring the snapshot the SQLite run wrote (building
                        # the demo costs ~100 s there), or builds its own if the SQLite run
                        # ended without one (tests/conftest.py).
                        banner(f"pytest on SQLite and on {name}, side by side")
                        sqlite_done = workdir / "sqlite-run-ended"
                        pg_env["LOUDOU_TEST_DEMO_SNAPSHOT"] = env["LOUDOU_TEST_DEMO_SNAPSHOT"]
                        pg_env["LOUDOU_TEST_DEMO_SNAPSHOT_FROM"] = str(sqlite_done)
                        children = []
                        try:
                            children.append(
                                PytestProcess(name, pg_env, pg_args, pg_dir, log=pg_dir / "log")
                            )
                            children.append(PytestProcess("SQLite", sqlite_env, args, workdir))
                            sqlite_run = children[1].wait()
                            sqlite_done.touch()
                            pg_run = children[0].wait()
                        finally:
                            for child in children:
                                child.stop()
                        runs += [sqlite_run, pg_run]
                        parts.append(Part("SQLite", sqlite_run.ok, sqlite_run.describe()))
                        parts.append(Part(name, pg_run.ok, pg_run.describe()))
                    else:  # after the SQLite run: reuse its demo snapshot
                        pg_env["LOUDOU_TEST_DEMO_SNAPSHOT"] = env["LOUDOU_TEST_DEMO_SNAPSHOT"]
                        run = run_pytest(name, pg_env, pg_args, pg_dir)
                        runs.append(run)
                        parts.append(Part(name, run.ok, run.describe()))
            except PgClusterError as exc:
                say(str(exc))
                parts.append(Part(name, False, "FAILED: the cluster did not start (see above)"))

        parts.append(browser_part(runs, chromium, require_all))
    except KeyboardInterrupt:
        interrupted = True
        parts.append(Part("Interrupted", False, "stopped by Ctrl-C or SIGTERM"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    banner(f"Summary ({time.monotonic() - started:.0f}s)")
    width = max(len(p.name) for p in parts) + 1
    for part in parts:
        say(f"{part.name + ':':<{width}} {part.detail}")
    passed = sum(r.passed for r in runs)
    failed = sum(r.failed for r in runs)
    skipped = sum(r.skipped for r in runs)
    ok = all(p.ok for p in parts) and not interrupted
    if not ok:
        say("FAILED: " + ", ".join(p.name for p in parts if not p.ok))
    say(f"all: {passed} passed, {failed} failed, {skipped} skipped")
    if interrupted:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
