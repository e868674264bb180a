"""A ``celery worker`` subprocess for the Celery tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


class Worker:
    """A ``celery worker`` subprocess running tests/test_celery/celery_project.py."""

    def __init__(self, broker: str, ingest: str | None, log: Path, **options: str) -> None:
        self.log = log
        env = {
            **os.environ,
            "TD_CELERY_BROKER": broker,
            "TD_CELERY_INGEST": ingest or "",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        }
        env.pop("TELEMETRYDECK_APP_ID", None)
        arguments = {"concurrency": "2", "pool": "prefork"}
        for name, value in options.items():
            if name.startswith("TD_CELERY_"):
                env[name] = value
            else:
                arguments[name.replace("_", "-")] = value
        command = [sys.executable, "-m", "celery", "-A", "celery_project", "worker"]
        command += [f"--{name}={value}" for name, value in arguments.items()]
        command += ["--loglevel=INFO", "--without-gossip", "--without-mingle"]
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command, cwd=HERE, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

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
