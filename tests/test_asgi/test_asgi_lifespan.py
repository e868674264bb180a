"""A startup crash is never hidden: an application that speaks lifespan and raises reaches the
server exactly as without td_web; td_web answers lifespan only for applications that never
speak it (and then still flushes at shutdown). Through real ASGI calls, Starlette's test client
and a real uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import environment_without_telemetrydeck
from ingest_server import IngestServer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from test_asgi.asgi_startup_apps import BrokenMiddleware, DatabaseUnreachable, crashing
from test_asgi.asgi_support import APP_ID, LifespanServer, TestClient

from td_web.asgi import TelemetryDeckMiddleware

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


async def test_a_startup_that_raises_after_receiving_reaches_the_server() -> None:
    server = LifespanServer()
    with pytest.raises(DatabaseUnreachable):
        await TelemetryDeckMiddleware(crashing, app_id=APP_ID)(
            {"type": "lifespan"}, server.receive, server.send
        )
    assert server.sent == []  # td_web did not claim the startup completed


def test_exception_in_middleware_reaches_starlettes_test_client() -> None:
    """Modelled on Starlette's own ``test_exception_in_middleware``, with td_web added."""
    app = Starlette(middleware=[Middleware(BrokenMiddleware)])
    app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)

    with pytest.raises(DatabaseUnreachable), TestClient(app):
        pass  # pragma: no cover


def test_exception_in_middleware_of_a_wrapped_starlette_app() -> None:
    app = TelemetryDeckMiddleware(
        Starlette(middleware=[Middleware(BrokenMiddleware)]), app_id=APP_ID
    )
    with pytest.raises(DatabaseUnreachable), TestClient(app):
        pass  # pragma: no cover


async def test_an_app_that_never_speaks_lifespan_is_answered_and_flushed(
    ingest: IngestServer,
) -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"  # the usual way a plain app refuses lifespan

    middleware = TelemetryDeckMiddleware(
        plain, app_id=APP_ID, endpoint=ingest.url, flush_interval=3600
    )
    middleware.client.signal("Deploy.finished")
    server = LifespanServer()
    await middleware({"type": "lifespan"}, server.receive, server.send)
    assert server.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    # An hour's flush interval: only the shutdown flush can have delivered it.
    assert [s["type"] for s in ingest.accepted_signals] == ["Deploy.finished"]


# -- a real uvicorn ----------------------------------------------------------------------------

START_TIMEOUT = 30.0


def _uvicorn_startup(target: str, lifespan: str, ingest: IngestServer, tmp_path: Path) -> str:
    """How uvicorn's startup of ``target`` ends: ``exit <code>`` or ``serving``."""
    log = tmp_path / f"{target.replace(':', '-')}-{lifespan}.log"
    environment = environment_without_telemetrydeck()
    environment.update(
        TELEMETRYDECK_APP_ID=APP_ID,
        TELEMETRYDECK_ENDPOINT=ingest.url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    argv = [sys.executable, "-m", "uvicorn", target, "--port", "0", "--lifespan", lifespan]
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, cwd=HERE, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                return f"exit {code}: {_startup_line(log)}"
            if "Application startup complete" in log.read_text(errors="replace"):
                return "serving"
            time.sleep(0.05)
        pytest.fail(f"uvicorn neither served nor exited:\n{log.read_text()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _startup_line(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    return next((line for line in lines if "startup failed" in line), "no failure logged")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "lifespan", "expected"),
    [
        ("crashing", "on", "exit 3: ERROR:    Application startup failed. Exiting."),
        ("broken", "on", "exit 3: ERROR:    Application startup failed. Exiting."),
        ("failing_lifespan", "auto", "exit 3: ERROR:    Application startup failed. Exiting."),
    ],
)
def test_uvicorn_refuses_to_start_exactly_as_without_td_web(
    target: str, lifespan: str, expected: str, ingest: IngestServer, tmp_path: Path
) -> None:
    bare = _uvicorn_startup(f"asgi_startup_apps:{target}", lifespan, ingest, tmp_path)
    wrapped = _uvicorn_startup(f"asgi_startup_apps:{target}_td", lifespan, ingest, tmp_path)
    assert bare == expected
    assert wrapped == bare
