"""SIGKILL half-way: a real process is killed in the middle of an import.

The import runs in a child process on its own SQLite file; the child signals when it is
inside its third batch and the test kills it with SIGKILL. A second process then reads
what is left: nothing (all-or-nothing), or the two committed batches and a job that
says where it stopped (skip-bad-rows), which a resumed run completes.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import csv, json, os, sys, time
    import django
    django.setup()
    from django.core.management import call_command
    from loudou.imports import importers
    from loudou.imports.models import ImportJob
    from loudou.imports.services import create_job, run_job
    from loudou.leads.models import Lead
    from loudou.org.models import User
    from loudou.org.services import create_user

    importers.BATCH = 10
    step, folder = sys.argv[1], sys.argv[2]
    if step == "start":
        call_command("migrate", verbosity=0)
        admin = create_user("admin", role="admin")
        path = os.path.join(folder, "leads.csv")
        with open(path, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["线索名称", "手机"])
            for i in range(50):
                out.writerow([f"线索{i}", f"139{i:08d}"])
        job = create_job(actor=admin, kind="leads", file=path,
                         skip_bad_rows=sys.argv[3] == "skip")
        calls = []
        def progress(done, total):
            calls.append(done)
            if len(calls) == 3:  # inside the third batch's transaction
                print("READY", flush=True)
                time.sleep(600)
        run_job(job, progress=progress)
    else:
        job = ImportJob.objects.get()
        state = {"leads": Lead.objects.count(), "status": job.status,
                 "resume_after_row": job.resume_after_row}
        if step == "resume":
            job = run_job(job)
            state.update(after=Lead.objects.count(), final=job.status,
                         names=len(set(Lead.objects.values_list("name", flat=True))))
        print(json.dumps(state), flush=True)
""")


def child(step, folder, *args, wait=True, script=CHILD):
    """Run ``script`` (by default this module's CHILD) as ``step`` on the database in
    ``folder``; with ``wait``, its last line of output as JSON."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "loudou.settings",
           "LOUDOU_DATABASE_URL": f"sqlite:///{folder}/db.sqlite3",
           "LOUDOU_VAR_DIR": str(folder / "var")}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", script, step, str(folder), *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if not wait:
        return process
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def kill_in_third_batch(folder, mode):
    process = child("start", folder, mode, wait=False)
    try:
        line = process.stdout.readline()
        assert line.strip() == "READY"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["all", "skip"])
def test_sigkill_half_way(tmp_path, mode, sqlite_copy):
    """Killed in its third batch of ten: all-or-nothing leaves no lead; skip-bad-rows
    leaves exactly the two committed batches, the job records row 21 (header is row 1)
    as where it stopped, and resuming imports the other 30 without duplicates."""
    sqlite_copy(tmp_path / "db.sqlite3")
    kill_in_third_batch(tmp_path, mode)
    state = child("inspect", tmp_path)
    if mode == "all":
        assert (state["leads"], state["resume_after_row"]) == (0, 0)
        return
    assert state == {"leads": 20, "status": "running", "resume_after_row": 21}
    resumed = child("resume", tmp_path)
    assert (resumed["after"], resumed["final"], resumed["names"]) == (50, "done", 50)
