"""td_web's FastAPI example: a page, a JSON API on an APIRouter with a prefix, a mounted
sub-app, a stream, a websocket and a failing route, configured from the environment.

Run it against a local collector (see README.md beside this file)::

    td-web collect --port 8787 &
    cd example_projects/fastapi_app
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

from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

import td_web
from td_web.asgi import TelemetryDeckMiddleware, TelemetryDep

HERE = Path(__file__).parent

PRODUCTS = {
    1: {"id": 1, "name": "Paint remover", "price": 9.5},
    2: {"id": 2, "name": "Dog shampoo", "price": 12.0},
    3: {"id": 3, "name": "Cowboy hat", "price": 19.99},
}

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>td_web FastAPI example</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body>
<h1>td_web FastAPI example</h1>
<ul>
  <li><a href="/api/products/3">/api/products/3</a> (JSON, an APIRouter with prefix /api)</li>
  <li><a href="/admin/reports/2024">/admin/reports/2024</a> (a mounted FastAPI sub-app)</li>
  <li><a href="/stream">/stream</a> (server-sent events)</li>
  <li><a href="/boom">/boom</a> (raises)</li>
  <li><a href="/docs">/docs</a> (the OpenAPI page; try POST /api/cart there)</li>
</ul>
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


app = FastAPI(title="td_web FastAPI example", debug=os.environ.get("DEBUG") == "1")
app.add_middleware(TelemetryDeckMiddleware, **telemetry_options())


# -- the site -------------------------------------------------------------------------------


@app.get("/", response_class=HTMLResponse)
async def home() -> str:
    return PAGE


@app.get("/healthz", response_class=PlainTextResponse)
async def health() -> str:
    return "ok"  # /healthz is never tracked


@app.get("/stream")
async def events() -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        for number in range(1, 4):
            await asyncio.sleep(0.05)
            yield f"data: tick {number}\n\n"
        # td_web.current() finds the request's helper anywhere inside the request.
        td_web.current().signal("Stream.finished", {"Stream.events": 3})

    return StreamingResponse(stream(), media_type="text/event-stream")


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("the example fails here on purpose")


@app.websocket("/ws")
async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello from the websocket")
    await websocket.close()


# -- the JSON API: an APIRouter included with the /api prefix -------------------------------

api = APIRouter(prefix="/api", tags=["shop"])


@api.get("/products/{product_id}")
async def product(product_id: int) -> dict[str, Any]:
    item = PRODUCTS.get(product_id)
    if item is None:
        raise HTTPException(status_code=404, detail="no such product")
    return item


@api.post("/cart", status_code=201)
async def add_to_cart(telemetry: TelemetryDep) -> dict[str, bool]:
    # The dependency is the same helper as request.state.telemetry and td_web.current().
    telemetry.signal("Cart.itemAdded", {"Cart.items": 1}, float_value=19.99)
    return {"added": True}


@api.get("/whoami")
async def whoami(request: Request) -> dict[str, str | None]:
    return {"session": request.state.telemetry.session_id}


app.include_router(api)

# -- a separate FastAPI app, mounted under /admin -------------------------------------------

admin = FastAPI(title="admin")


@admin.get("/reports/{year}")
async def report(year: int) -> dict[str, int]:
    return {"year": year, "orders": 42}


app.mount("/admin", admin)
app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
