"""A deploy script's view of the framework-native commands (``manage.py telemetrydeck``,
``flask telemetrydeck``): run in a real subprocess on an example project, configured from the
environment, judged by exit code and by what arrived at the local ingest server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import APP_ID, environment_without_telemetrydeck
from ingest_server import IngestServer, free_port


def check_send_and_fail_like_a_deploy_script(
    command: list[str], cwd: Path, ingest: IngestServer, **env: str
) -> None:
    """``check`` passes, ``send`` delivers, ``check`` against a dead endpoint exits 1."""
    environment = environment_without_telemetrydeck()
    environment.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_ENDPOINT=ingest.url, **env)

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *arguments],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    checked = run("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "configuration looks good" in checked.stdout
    sent = run("send", "Deploy.finished", "release=2")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert [s["type"] for s in ingest.accepted_signals] == ["Deploy.finished"]
    assert ingest.accepted_signals[0]["payload"]["release"] == "2"

    environment["TELEMETRYDECK_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    assert run("check", "--timeout", "2").returncode == 1
