"""``loudou scheduler``: enqueue the periodic jobs (core/schedule.py) when they are due.

Safe to run more than once at a time: each due run is enqueued by exactly one scheduler."""

import signal
import time

from django.core.management.base import BaseCommand

from loudou.core import schedule


class Command(BaseCommand):
    help = "Enqueue periodic background jobs when due (runs until stopped; --once: one tick)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one tick, then exit")
        parser.add_argument("--every", type=float, default=15.0, help="seconds between ticks")
        parser.add_argument(
            "--list", dest="list_jobs", action="store_true", help="list the jobs and exit"
        )

    def handle(self, *args, once, every, list_jobs, **options):
        if list_jobs:
            for job in schedule.jobs():
                self.stdout.write(f"{job.name}\tevery {job.interval}\t{job.task}")
            return
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        if not once:
            signal.signal(signal.SIGINT, stop)
            signal.signal(signal.SIGTERM, stop)
        while True:
            for name in schedule.tick():
                self.stdout.write(f"enqueued {name}")
            if once or stopping:
                return
            deadline = time.monotonic() + every
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.5)
            if stopping:
                return
