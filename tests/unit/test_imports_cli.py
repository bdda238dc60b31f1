"""The ``loudou import`` command, and what a run interrupted half-way leaves behind."""

import csv

import pytest
from django.core.management import CommandError, call_command

from loudou.imports import importers
from loudou.imports.models import ImportJob, JobStatus
from loudou.imports.services import create_job, run_job
from loudou.leads.models import Lead
from loudou.pipeline.models import Opportunity, StageChange


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def leads_file(path, n, bad=()):
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        out = csv.writer(handle)
        out.writerow(["*线索名称", "手机", "邮箱"])
        for i in range(n):
            out.writerow([f"线索{i}", f"139{i:08d}", "broken@" if i in bad else ""])
    return path


def test_cli_imports_and_undoes(org, tmp_path, capsys):
    """``loudou import leads FILE`` imports as the first admin and prints a summary;
    ``loudou import undo JOB`` removes what it created."""
    call_command("import", "leads", str(leads_file(tmp_path / "l.csv", 3)))
    out = capsys.readouterr().out
    job = ImportJob.objects.get()
    assert "new 3" in out and f"Job #{job.pk}" in out
    assert Lead.objects.count() == 3 and job.created_by == org.admin
    call_command("import", "undo", str(job.pk))
    assert Lead.objects.count() == 0


def test_cli_refused_rows_exit_non_zero_with_the_rows(org, tmp_path, capsys, english):
    """A refused all-or-nothing import exits with status 2 and lists the bad rows;
    with --skip-bad-rows the good rows go in and the status is 1."""
    path = str(leads_file(tmp_path / "l.csv", 4, bad={1}))
    with pytest.raises(CommandError) as refused:
        call_command("import", "leads", path)
    assert refused.value.returncode == 2
    assert "row 3, 邮箱: not an e-mail address" in capsys.readouterr().out
    assert Lead.objects.count() == 0
    with pytest.raises(CommandError) as partly:
        call_command("import", "leads", path, "--skip-bad-rows")
    assert partly.value.returncode == 1
    assert Lead.objects.count() == 3


def test_cli_dry_run_writes_nothing(org, tmp_path, capsys):
    call_command("import", "leads", str(leads_file(tmp_path / "l.csv", 2)), "--dry-run")
    assert "Checked" in capsys.readouterr().out
    assert Lead.objects.count() == 0


class Killed(BaseException):
    """Stands in for the process dying between two batches."""


def crash_after(batches):
    def progress(done, total):
        progress.calls += 1
        if progress.calls >= batches:
            raise Killed

    progress.calls = 0
    return progress


def test_interrupted_skip_bad_rows_run_keeps_whole_batches_and_resumes(org, tmp_path, monkeypatch):
    """Skip-bad-rows commits batch by batch with the job row: interrupted after two
    batches, the two batches are in, the job says where it stopped, and a resumed run
    imports exactly the rest."""
    monkeypatch.setattr(importers, "BATCH", 10)
    job = create_job(actor=org.admin, kind="leads", file=leads_file(tmp_path / "l.csv", 35),
                     skip_bad_rows=True)  # fmt: skip
    with pytest.raises(Killed):
        run_job(job, progress=crash_after(3))
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert Lead.objects.count() == 20 and job.resume_after_row == 21  # header is row 1
    job = run_job(job)
    assert job.status == JobStatus.DONE
    assert Lead.objects.count() == 35 and job.counts["new"] == 35
    assert sorted(Lead.objects.values_list("name", flat=True)) == sorted(
        f"线索{i}" for i in range(35))  # fmt: skip


def test_interrupted_all_or_nothing_run_leaves_nothing(org, tmp_path, monkeypatch):
    """An all-or-nothing run interrupted half-way leaves the database as before."""
    monkeypatch.setattr(importers, "BATCH", 10)
    path = tmp_path / "o.csv"
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["商机名称", "客户名称", "商机金额", "商机阶段"])
        for i in range(30):
            out.writerow([f"商机{i}", f"客户{i}", "100", "初步接洽"])
    job = create_job(actor=org.admin, kind="opportunities", file=path)
    with pytest.raises(Killed):
        run_job(job, progress=crash_after(2))
    assert not Opportunity.objects.exists() and not StageChange.objects.exists()
    job.refresh_from_db()
    assert job.resume_after_row == 0 and job.created_objects == {}
