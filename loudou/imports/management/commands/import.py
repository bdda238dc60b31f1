"""``loudou import KIND FILE [options]``, ``loudou import undo JOB`` and
``loudou import resume JOB``: the command-line import (docs/import.md).

Exit status: 0 when every row was imported (or, with --dry-run, would be); 1 when some rows
were left out (--skip-bad-rows) or would be refused; 2 when the job was refused or failed.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from loudou.core.exceptions import ServiceError
from loudou.imports.layouts import FORMATS
from loudou.imports.models import ImportJob, JobStatus, OnDuplicate
from loudou.imports.reader import UnreadableFile, open_table
from loudou.imports.services import create_job, run_job, undo
from loudou.imports.values import text
from loudou.org.models import Role, User

KINDS = ["accounts", "contacts", "leads", "opportunities", "activities", "orders", "payments"]
SHOWN_ERRORS = 20


def read_owner_map(path) -> dict[str, str]:
    """Two columns: the name as written in the import file, and the Loudou username."""
    table = open_table(path)
    pairs = {}  # the first row is a header
    for _number, row in table.rows:
        if len(row) >= 2 and text(row[0]):
            pairs[text(row[0])] = text(row[1])
    return pairs


class Command(BaseCommand):
    help = (
        "Import accounts, contacts, leads or opportunities (with stage history); "
        "undo or resume an import."
    )

    def add_arguments(self, parser):
        parser.add_argument("what", choices=[*KINDS, "undo", "resume"])
        parser.add_argument("target", help="the file to import, or the job id to undo/resume")
        parser.add_argument("--history", help="stage history file (opportunities)")
        parser.add_argument("--accounts", help="accounts file (opportunities)")
        parser.add_argument("--pipeline", default="", help="import into this pipeline")
        parser.add_argument("--format", default="auto", choices=FORMATS)
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--on-duplicate", default="skip", choices=OnDuplicate.values)
        parser.add_argument("--skip-bad-rows", action="store_true")
        parser.add_argument("--owner-map", help="CSV/xlsx: name in the file, Loudou username")
        parser.add_argument("--pool", type=int, help="leads: put them into this public pool")
        parser.add_argument("--sheet", default="", help="the workbook's sheet to read")
        parser.add_argument("--user", help="run as this user (default: the first admin)")

    def handle(self, *args, what, target, **options):
        actor = self._actor(options["user"])
        try:
            if what == "undo":
                job = undo(self._job(target), actor=actor)
                self.stdout.write(f"Import #{job.pk} undone.")
                return None
            if what == "resume":
                job = self._job(target)
                return self._run(job, actor)
            owner_map = read_owner_map(options["owner_map"]) if options["owner_map"] else {}
            job = create_job(
                actor=actor, kind=what, file=target, history=options["history"],
                accounts=options["accounts"], dry_run=options["dry_run"],
                format=options["format"], on_duplicate=options["on_duplicate"],
                skip_bad_rows=options["skip_bad_rows"], pipeline=options["pipeline"],
                owner_map=owner_map, pool=options["pool"], sheet=options["sheet"],
            )  # fmt: skip
        except (ServiceError, UnreadableFile, FileNotFoundError) as error:
            raise CommandError(str(error), returncode=2) from None
        return self._run(job, actor)

    def _actor(self, username):
        users = User.objects.filter(is_active=True)
        if username:
            actor = users.filter(username=username).first()
        else:
            actor = users.filter(role=Role.ADMIN).order_by("pk").first() or users.filter(
                is_superuser=True).order_by("pk").first()  # fmt: skip
        if actor is None:
            raise CommandError("No such active user; give --user USERNAME.", returncode=2)
        return actor

    def _job(self, target):
        job = ImportJob.objects.filter(pk=int(target) if target.isdigit() else 0).first()
        if job is None:
            raise CommandError(f"No import #{target}.", returncode=2)
        return job

    def _run(self, job, actor):
        started = time.monotonic()
        last = [0.0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] < 0.5 and done < total:
                return
            last[0] = now
            rate = done / max(now - started, 1e-6)
            of = f"/{total:,}" if total else ""
            self.stderr.write(f"\r{done:>10,}{of} rows ({rate:,.0f}/s)", ending="")
            self.stderr.flush()

        try:
            job = run_job(job, actor=actor, progress=progress)
        except ServiceError as error:
            raise CommandError(str(error), returncode=2) from None
        elapsed = time.monotonic() - started
        self.stderr.write("")
        counts = job.counts or {}
        summary = ", ".join(f"{key} {value:,}" for key, value in sorted(counts.items()))
        verb = "Checked" if job.dry_run else "Imported"
        self.stdout.write(
            f"{verb} {job.original_name} as {job.kind} ({job.layout} layout) in {elapsed:.1f} s: "
            f"{summary or 'nothing'}. Job #{job.pk}, status {job.status}."
        )
        for error in job.errors[:SHOWN_ERRORS]:
            where = f"{error['file']} " if error.get("file") else ""
            self.stdout.write(f"  {where}row {error['row']}, {error['column']}: {error['reason']}")
        if counts.get("invalid", 0) > SHOWN_ERRORS:
            self.stdout.write(f"  … and {counts['invalid'] - SHOWN_ERRORS:,} more bad rows.")
        if job.status in (JobStatus.REFUSED, JobStatus.FAILED):
            raise CommandError(job.message or "The import was refused.", returncode=2)
        if counts.get("invalid"):
            raise CommandError(
                f"{counts['invalid']:,} rows were {'refused' if job.dry_run else 'left out'}.",
                returncode=1,
            )
