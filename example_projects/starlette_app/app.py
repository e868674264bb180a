"""td_web's Starlette example: pages, a JSON API under a prefix, a mounted sub-app, a stream,
a websocket and a failing route, configured from the environment.

Run it against a local collector (see README.md beside this file)::

    td-web collect --port 8787 &
    cd example_projects/starlette_app
    TELEMETRYDECK_APP_ID=B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE \\
    TELEMETRYDECK_ENDPOINT=http://127.0.0.1:8787 \\
        uvicorn app:app
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

import td_web
from td_web.asgi import TelemetryDeckMiddleware

HERE = Path(__file__).parent

PRODUCTS = {
    1: {"id": 1, "name": "Paint remover", "price": 9.5},
    2: {"id": 2, "name": "Dog shampoo", "price": 12.0},
    3: {"id": 3, "name": "Cowboy hat", "price": 19.99},
}

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>td_web Starlette example</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body>
<h1>td_web Starlette example</h1>
<ul>
  <li><a href="/api/products/3">/api/products/3</a> (JSON, route under the /api prefix)</li>
  <li><a href="/admin/reports/2024">/admin/reports/2024</a> (a mounted sub-app)</li>
  <li><a href="/stream">/stream</a> (server-sent events)</li>
  <li><a href="/boom">/boom</a> (raises)</li>
</ul>
<form method="post" action="/api/cart"><button>POST /api/cart</button></form>
</body>
</html>
"""


def telemetry_options() -> dict[str, Any]:
    """td_web reads ``TELEMETRYDECK_APP_ID``, ``_SALT``, ``_ENDPOINT`` and the other common
    variables itself; these two more make the example quick to watch and quick to stop."""
    options: dict[str, Any] = {}
    for name in ("flush_interval", "shutdown_timeout"):
        value = os.environ.get(f"TELEMETRYDECK_{name.upper()}")
        if value:
            options[name] = float(value)
    if not os.environ.get("TELEMETRYDECK_APP_ID"):
        options["enabled"] = False  # the example still runs, with td_web off
    return options


# -- the site -------------------------------------------------------------------------------


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")  # /healthz is never tracked


async def events(request: Request) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        for number in range(1, 4):
            await asyncio.sleep(0.05)
            yield f"data: tick {number}\n\n"
        # td_web.current() finds the request's helper anywhere inside the request.
        td_web.current().signal("Stream.finished", {"Stream.events": 3})

    return StreamingResponse(stream(), media_type="text/event-stream")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("the example fails here on purpose")


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello from the websocket")
    await websocket.close()


# -- the JSON API, everything under /api ----------------------------------------------------


async def product(request: Request) -> JSONResponse:
    item = PRODUCTS.get(request.path_params["product_id"])
    if item is None:
        return JSONResponse({"error": "no such product"}, status_code=404)
    return JSONResponse(item)


async def add_to_cart(request: Request) -> JSONResponse:
    request.state.telemetry.signal("Cart.itemAdded", {"Cart.items": 1}, float_value=19.99)
    return JSONResponse({"added": True}, status_code=201)


api = [
    Route("/products/{product_id:int}", product),
    Route("/cart", add_to_cart, methods=["POST"]),
]

# -- a separate Starlette app, mounted under /admin -----------------------------------------


async def report(request: Request) -> JSONResponse:
    return JSONResponse({"year": request.path_params["year"], "orders": 42})


admin = Starlette(routes=[Route("/reports/{year:int}", report)])

app = Starlette(
    debug=os.environ.get("DEBUG") == "1",
    routes=[
        Route("/", home),
        Route("/healthz", health),
        Route("/stream", events),
        Route("/boom", boom),
        WebSocketRoute("/ws", greet),
        Mount("/api", routes=api),
        Mount("/admin", app=admin),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ],
)
app.add_middleware(TelemetryDeckMiddleware, **telemetry_options())
