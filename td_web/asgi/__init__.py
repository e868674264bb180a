"""td_web for ASGI: Starlette, FastAPI, and any ASGI application.

::

    from td_web.asgi import TelemetryDeckMiddleware

    app = TelemetryDeckMiddleware(app, app_id="...")           # any ASGI app
    app.add_middleware(TelemetryDeckMiddleware, app_id="...")  # Starlette / FastAPI

Inside a request: ``request.state.telemetry.signal(...)``, ``td_web.current()``, or in FastAPI
the dependency ``telemetry: TelemetryDep``. ``get_telemetry`` and ``TelemetryDep`` import
FastAPI on first use, so plain ASGI and Starlette apps never load it.

Shutdown: queued signals are delivered during the server's lifespan shutdown (td_web answers
the lifespan protocol for apps that do not). With lifespan turned off, uvicorn 0.47 and newer
let td_web's SIGTERM handler deliver them; older uvicorn releases install their own handler
first and end the process by a re-raised SIGTERM, so keep lifespan on there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._web import Telemetry
from ._middleware import TelemetryDeckMiddleware

if TYPE_CHECKING:
    from .fastapi import TelemetryDep, get_telemetry

__all__ = ["Telemetry", "TelemetryDeckMiddleware", "TelemetryDep", "get_telemetry"]

_FASTAPI_NAMES = frozenset({"TelemetryDep", "get_telemetry"})


def __getattr__(name: str) -> Any:
    if name in _FASTAPI_NAMES:
        from . import fastapi

        return getattr(fastapi, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
