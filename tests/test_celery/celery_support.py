"""A ``celery worker`` subprocess for the Celery tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
EXAMPLE_SITE = HERE.parents[1] / "example_projects" / "django_site"


class Worker:
    """``celery -A <app> worker`` with the prefork pool, its output in ``log``."""

    def __init__(
        self, app: str, cwd: Path, env: dict[str, str], log: Path, **arguments: str
    ) -> None:
        self.log = log
        options = {"concurrency": "2", "pool": "prefork", **arguments}
        command = [sys.executable, "-m", "celery", "-A", app, "worker"]
        command += [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
        command += ["--loglevel=INFO", "--without-gossip", "--without-mingle"]
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    @classmethod
    def test_project(cls, broker: str, ingest: str | None, log: Path, **options: str) -> Worker:
        """tests/test_celery/celery_project.py; TD_CELERY_* options configure it."""
        env = {
            **os.environ,
            "TD_CELERY_BROKER": broker,
            "TD_CELERY_INGEST": ingest or "",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        }
        env.pop("TELEMETRYDECK_APP_ID", None)
        env.update({name: value for name, value in options.items() if name.startswith("TD_")})
        arguments = {name: value for name, value in options.items() if not name.startswith("TD_")}
        return cls("celery_project", HERE, env, log, **arguments)

    @classmethod
    def example_site(cls, env: dict[str, str], log: Path) -> Worker:
        """The Django example site's app, example_projects/django_site/tdsite/celery.py."""
        return cls("tdsite", EXAMPLE_SITE, env, log)

    def stop(self, timeout: float = 30) -> int:
        """A warm shutdown (SIGTERM), as a process manager does it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._log_file.close()

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")
