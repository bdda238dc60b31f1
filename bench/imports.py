"""Benchmark: importing opportunities with stage history, and leads (issue 7).

    .venv/bin/python -m bench.imports --opportunities 100000 --leads 1000000 --xlsx --db sqlite
    .venv/bin/python -m bench.imports --opportunities 20000 --leads 200000 --runs 3 \
        --db sqlite postgres

The files are written first (native layout: an opportunity CSV, a history CSV with four
rows per opportunity, a lead CSV; with --xlsx also the opportunities as xlsx); then each
import runs in a child process on a fresh, migrated database, through the same code as
``loudou import`` (all-or-nothing, one transaction). Printed per import: rows, wall time,
throughput, the child's CPU time (``getrusage``: on PostgreSQL the server's own work is
not in it; ``server_cpu_seconds`` is the CPU time of the connection's server process,
read from /proc), and peak resident memory of the child (``ru_maxrss``) before and after, so the
import's own share is visible; ``prepare_cpu_seconds`` and ``prepare_rss_peak_mb`` are
those of the process an import forks to prepare its batches (imports.ahead; 0 without
one: its CPU is not in ``cpu_seconds``). With ``--runs N`` each import is repeated on a fresh
database and the medians are printed last (the machine is shared: read the CPU figures).
"""

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import ROOT, database, server_cpu, server_cpu_between, setup_django

STAGES = [("D 识别", 10), ("C 目标", 25), ("B 重点跟进", 50), ("A 订单跟进", 80)]


def write_files(folder: Path, opportunities: int, leads: int, xlsx: bool) -> dict:
    rng = random.Random(7)
    start = datetime(2023, 1, 1, 9, 0, tzinfo=UTC)
    opp_path, hist_path = folder / "opportunities.csv", folder / "history.csv"
    rows = []
    with open(opp_path, "w", newline="") as o, open(hist_path, "w", newline="") as h:
        opps, hist = csv.writer(o), csv.writer(h)
        header = ["id", "name", "account", "amount", "pipeline", "stage", "status", "owner",
                  "created_at", "closed_at", "expected_close_date"]  # fmt: skip
        opps.writerow(header)
        hist.writerow(["opportunity_id", "stage", "changed_at", "probability"])
        for i in range(opportunities):
            t = start + timedelta(minutes=7 * i)
            events = [(t + timedelta(days=d), STAGES[k]) for k, d in enumerate((0, 5, 12))]
            fate = i % 3
            if fate == 0:
                events.append((t + timedelta(days=30), ("成交", 100)))
                stage, status, closed = "成交", "won", t + timedelta(days=30)
            elif fate == 1:
                events.append((t + timedelta(days=25), ("输单", 0)))
                stage, status, closed = "B 重点跟进", "lost", t + timedelta(days=25)
            else:
                events.append((t + timedelta(days=20), STAGES[3]))
                stage, status, closed = "A 订单跟进", "open", None
            row = [f"O{i}", f"商机{i:07d}", f"客户{i % (opportunities // 5 + 1):06d}有限公司",
                   f"{rng.randint(1, 5000) * 100:,}", "Bench", stage, status, "admin",
                   t.isoformat(), closed.isoformat() if closed else "",
                   (t + timedelta(days=60)).date().isoformat()]  # fmt: skip
            opps.writerow(row)
            if xlsx:
                rows.append(row)
            for at, (name, prob) in events:
                hist.writerow([f"O{i}", name, at.isoformat(), prob])
    files = {"opportunities": str(opp_path), "history": str(hist_path)}
    if xlsx:
        import xlsxwriter

        path = folder / "opportunities.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, header)
        for r, row in enumerate(rows, start=1):
            sheet.write_row(r, 0, row)
        book.close()
        files["xlsx"] = str(path)
    if leads:
        path = folder / "leads.csv"
        with open(path, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["线索名称", "公司名称", "手机", "邮箱", "线索来源", "负责人"])
            for i in range(leads):
                out.writerow([f"联系人{i}", f"公司{i % 50000}有限公司", f"1{3000000000 + i}",
                              f"lead{i}@example.cn", "展会", "admin"])  # fmt: skip
        files["leads"] = str(path)
    return files


def kept_files(folder: Path, opportunities: int, leads: int, xlsx: bool) -> dict | None:
    """The files an earlier run wrote in ``folder`` for the same sizes, or None."""
    try:
        kept = json.loads((folder / "files.json").read_text())
    except (OSError, ValueError):
        return None
    if kept["sizes"] != [opportunities, leads, xlsx]:
        return None
    return kept["files"]


def measure(args) -> None:
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from loudou.imports.services import create_job, run_job
    from loudou.org.services import create_user

    call_command("migrate", verbosity=0)
    admin = create_user("admin", role="admin")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu_before = children.ru_utime + children.ru_stime
    kind = "leads" if args.what == "leads" else "opportunities"
    history = args.history if args.what != "leads" else None
    job = create_job(actor=admin, kind=kind, file=args.file, history=history)
    server_before = server_cpu()
    started = time.perf_counter()
    job = run_job(job)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the preparing process, if any
    prepare_cpu = children.ru_utime + children.ru_stime - children_cpu_before
    server_after = server_cpu()
    server = server_cpu_between(server_before, server_after)
    server = None if server is None else round(server, 1)
    assert job.status == "done", (job.status, job.message, job.errors[:5])
    result = {
        "import": args.what, "db": connection.vendor, "rows": job.total_rows,
        "created": job.counts.get("new"), "history_rows": job.counts.get("history_rows"),
        "seconds": round(elapsed, 1), "cpu_seconds": round(cpu, 1),
        "rows_per_s": round(job.total_rows / elapsed) if job.total_rows else None,
        "rss_before_mb": round(before / 1024), "rss_peak_mb": round(peak / 1024),
        "server_cpu_seconds": server, "prepare_cpu_seconds": round(prepare_cpu, 1),
        "prepare_rss_peak_mb": round(children.ru_maxrss / 1024),
    }  # fmt: skip
    print(json.dumps(result, ensure_ascii=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=0)
    parser.add_argument("--xlsx", action="store_true", help="also import the xlsx version")
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=1, help="repeat each import; medians")
    parser.add_argument("--data", help="keep the files in this folder and reuse them when "
                        "they were written for the same sizes")  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=["opportunities-csv", "opportunities-xlsx",
                        "leads"], help="run only these imports")  # fmt: skip
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--what", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--history", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return
    with contextlib.ExitStack() as stack:
        if args.data:
            folder = Path(args.data)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="loudou-import-bench-"))
            )
        files = kept_files(folder, args.opportunities, args.leads, args.xlsx)
        if files is None:
            started = time.monotonic()
            files = write_files(folder, args.opportunities, args.leads, args.xlsx)
            (folder / "files.json").write_text(
                json.dumps({"sizes": [args.opportunities, args.leads, args.xlsx], "files": files})
            )
            print(f"files written in {time.monotonic() - started:.1f} s", flush=True)
        runs = [("opportunities-csv", files["opportunities"])]
        if "xlsx" in files:
            runs.append(("opportunities-xlsx", files["xlsx"]))
        if "leads" in files:
            runs.append(("leads", files["leads"]))
        if args.only:
            runs = [(what, path) for what, path in runs if what in args.only]
        summary = []
        for kind in args.db:
            for what, path in runs:
                results = []
                for _run in range(args.runs):
                    with database(kind) as url:
                        extra = ["--history", files["history"]] if what != "leads" else []
                        results.append(measure_in_child(url, ["--measure", "--what", what,
                                                              "--file", path, *extra]))  # fmt: skip
                summary.append({
                    "import": what, "db": kind, "runs": len(results),
                    **{f"median_{key}": statistics.median(r[key] for r in results)
                       for key in ("seconds", "cpu_seconds", "rss_before_mb", "rss_peak_mb",
                                   "prepare_cpu_seconds", "prepare_rss_peak_mb")},
                    "median_server_cpu_seconds": statistics.median(
                        r["server_cpu_seconds"] for r in results
                    ) if all(r["server_cpu_seconds"] is not None for r in results) else None,
                })  # fmt: skip
        for line in summary:
            print(json.dumps(line, ensure_ascii=False), flush=True)


def measure_in_child(url: str, args: list[str]) -> dict:
    """Run one measured import in a child process on the database at ``url``."""
    env = {**os.environ, "LOUDOU_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "loudou.settings"}
    output = subprocess.run([sys.executable, "-m", "bench.imports", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)  # fmt: skip
    if output.returncode:
        sys.stderr.write(output.stderr)
        sys.exit(output.returncode)
    line = output.stdout.strip().splitlines()[-1]
    print(line, flush=True)
    return json.loads(line)


if __name__ == "__main__":
    main()
