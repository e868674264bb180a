"""The app the server tests run in real server processes (uvicorn, hypercorn, gunicorn).

Configured like a deployment, from the environment; each answer names the process that served
it, so the tests can tell that several workers took part.
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from td_web.asgi import TelemetryDeckMiddleware


async def hit(request: Request) -> JSONResponse:
    return JSONResponse({"n": request.path_params["n"], "pid": os.getpid()})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/hit/{n:int}", hit), Route("/healthz", health)])
app.add_middleware(
    TelemetryDeckMiddleware,
    flush_interval=float(os.environ.get("SERVED_FLUSH_INTERVAL", "5")),
    shutdown_timeout=float(os.environ.get("SERVED_SHUTDOWN_TIMEOUT", "5")),
    timeout=float(os.environ.get("SERVED_HTTP_TIMEOUT", "10")),
)


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain ASGI app with no routing and no lifespan support (it rejects the scope)."""
    if scope["type"] != "http":
        raise RuntimeError(f"{scope['type']} is not supported")
    path = scope["path"]
    if path.startswith("/hit/"):
        body = json.dumps({"n": int(path[len("/hit/") :]), "pid": os.getpid()}).encode()
    else:
        body = b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


plain_app = TelemetryDeckMiddleware(bare)
