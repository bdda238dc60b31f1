"""Shared plumbing for the benchmarks: a fresh database per run, in a subprocess.

Each benchmark runs its measuring part in a child process whose LOUDOU_DATABASE_URL
points at a new SQLite file or a throwaway PostgreSQL cluster (loudou.testing.pgcluster),
so that Django's settings are read once per database. Benchmarks are not tests: they
print figures, which docs/benchmarks.md records with the command that produced them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def database(kind: str):
    """Yield a LOUDOU_DATABASE_URL for an empty database of ``kind`` (sqlite|postgres)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="loudou-bench-") as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
    elif kind == "postgres":
        from loudou.testing.pgcluster import PgCluster

        with PgCluster() as cluster:
            yield cluster.create_database("bench")
    else:
        raise SystemExit(f"unknown database {kind!r}")


def run_child(module: str, url: str, args: list[str]) -> int:
    """Run ``python -m module args`` against the database at ``url``."""
    env = {**os.environ, "LOUDOU_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "loudou.settings"}
    return subprocess.call([sys.executable, "-m", module, *args], cwd=ROOT, env=env)


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
    import django

    django.setup()


def server_cpu() -> tuple[int, float] | None:
    """(backend pid, CPU seconds so far — user + system) of the PostgreSQL server process
    serving Django's connection, read from /proc (the throwaway cluster runs on this
    machine); None on SQLite, whose engine runs inside this process (in its own CPU
    time), or where /proc is not readable. Compare two readings only when the pid is the
    same (a new connection is a new process)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_between(before, after) -> float | None:
    """The server CPU seconds between two :func:`server_cpu` readings of one process."""
    if before is None or after is None or before[0] != after[0]:
        return None
    return after[1] - before[1]


def timed(fn, *, runs: int, warmup: int = 3) -> dict:
    """Call ``fn`` ``warmup`` + ``runs`` times; return the median and p95 wall time in
    milliseconds, and the median CPU time of this process (which a busy machine does not
    inflate; a PostgreSQL server's own time is not in it)."""
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return {
        "median": round(statistics.median(samples), 1),
        "p95": round(p95, 1),
        "cpu_median": round(statistics.median(cpu), 1),
        "runs": runs,
    }


def migrate_and_generate(**options) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    call_command("generate", **options)
    print(f"  generated in {time.monotonic() - started:.1f} s", flush=True)


def bench_main(module, description, options, measure, header, argv=None) -> int:
    """The command line shared by the benchmarks: integer ``options`` (name → default),
    ``--db sqlite postgres``; for each database a fresh one, measured in a child process
    (``measure(args)`` runs there) so that every run starts cold and alone. ``header`` is
    a format string over the options, printed before each database."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--db", nargs="+", default=["sqlite"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure(args)
        return 0
    child = ["--child"]
    for name in options:
        child += [f"--{name}", str(getattr(args, name.replace("-", "_")))]
    status = 0
    for kind in args.db:
        print(f"== {kind}: {header.format(**vars(args))}", flush=True)
        with database(kind) as url:
            status |= run_child(module, url, child)
    return status
