"""The request's helper as a FastAPI dependency (imports FastAPI; ``td_web.asgi`` does not).

::

    from td_web.asgi import TelemetryDep

    @app.post("/checkout")
    async def checkout(telemetry: TelemetryDep):
        telemetry.signal("Checkout.completed")
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .._web import Telemetry, current

__all__ = ["TelemetryDep", "get_telemetry"]


async def get_telemetry(connection: HTTPConnection) -> Telemetry:
    """The helper ``TelemetryDeckMiddleware`` attached to this request; outside one (a
    websocket, an app without the middleware) the helper that sends nothing."""
    state = connection.scope.get("state")
    telemetry = state.get("telemetry") if isinstance(state, dict) else None
    return telemetry if isinstance(telemetry, Telemetry) else current()


#: ``telemetry: TelemetryDep`` in a path operation's parameters.
TelemetryDep = Annotated[Telemetry, Depends(get_telemetry)]
