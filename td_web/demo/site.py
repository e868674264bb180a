"""The example Django site, run as a real server process for the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import td_web

from .serving import free_port, wait_until_answering

DEMO_APP_ID = "5A5E1F1E-DE70-4D7A-9F1B-2C3D4E5F6A7B"


def find_site() -> Path:
    """The example site: beside the package in a checkout, or shipped inside the wheel."""
    package = Path(td_web.__file__).resolve().parent
    for candidate in (
        package.parent / "example_projects" / "django_site",
        package / "_examples" / "django_site",
    ):
        if (candidate / "manage.py").is_file():
            return candidate
    raise FileNotFoundError(
        "the example Django site was not found (looked beside the td_web package and inside "
        "it); run the demo from a checkout of the repository"
    )


class Site:
    """``manage.py migrate`` then ``runserver`` against the given ingest endpoint."""

    def __init__(self, endpoint: str, workdir: Path, log: IO[str]) -> None:
        self.path = find_site()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self._env = {
            **os.environ,
            "TELEMETRYDECK_ENDPOINT": endpoint,
            "TELEMETRYDECK_APP_ID": DEMO_APP_ID,
            "TELEMETRYDECK_SALT": "demo-salt",
            "TELEMETRYDECK_FLUSH_INTERVAL": "0.5",
            "DJANGO_SITE_DB": str(workdir / "site.sqlite3"),
            "DJANGO_DEBUG": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self._process: subprocess.Popen[str] | None = None

    def _manage(self, *arguments: str) -> list[str]:
        return [sys.executable, str(self.path / "manage.py"), *arguments]

    def start(self, timeout: float = 60.0) -> None:
        subprocess.run(
            self._manage("migrate", "--noinput"),
            env=self._env,
            cwd=self.path,
            check=True,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        self._process = subprocess.Popen(
            self._manage("runserver", f"127.0.0.1:{self.port}", "--noreload"),
            env=self._env,
            cwd=self.path,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_until_answering(self._process, self.url, timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """Ctrl-C, as a developer would: the site's exit flush delivers what is queued."""
        process = self._process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode
