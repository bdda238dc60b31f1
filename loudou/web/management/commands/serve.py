"""``loudou serve``: the web server, the background worker and the periodic scheduler
together; Ctrl-C stops them all."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from loudou.web.demo import DEMO_PASSWORD, demo_logins


class Command(BaseCommand):
    help = "Serve Loudou (gunicorn) and run the background worker until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("LOUDOU_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("LOUDOU_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=2, help="web worker processes")
        parser.add_argument(
            "--no-worker", action="store_true", help="do not start the worker nor the scheduler"
        )

    def handle(self, *args, host, port, workers, no_worker, **options):
        web = [
            sys.executable, "-m", "gunicorn", "loudou.wsgi:application",
            "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", "4",
            "--access-logfile", "-", "--graceful-timeout", "5",
        ]  # fmt: skip
        commands = {"web": web}
        if not no_worker:
            commands["worker"] = [sys.executable, "-m", "loudou.cli", "db_worker"]
            # Enqueues the periodic sweeps (pool recycling...); see loudou/core/schedule.py.
            commands["scheduler"] = [sys.executable, "-m", "loudou.cli", "scheduler"]
        procs = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        url = f"http://{host}:{port}"
        self.stdout.write(self.style.SUCCESS(f"\nLoudou is running at {url}"))
        logins = demo_logins()
        if logins:
            self.stdout.write(f"Demo logins (password {DEMO_PASSWORD}):")
            for username, label in logins:
                self.stdout.write(f"  {username:<12} {label}")
        self.stdout.write(f"Database: {settings.DATABASES['default']['NAME']}")
        self.stdout.write("Press Ctrl-C to stop.\n")

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} stopped (exit {proc.returncode}); stopping.")
                        stopping = True
                time.sleep(0.5)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.stdout.write("Stopped.")
