"""The hello-world apps as real servers load them (``latency.py`` starts the servers).

    uvicorn --app-dir bench --factory _served:starlette_app
    gunicorn --chdir bench "_served:flask_app()"

``BENCH_TD_WEB=1`` adds td_web, configured from the ``TELEMETRYDECK_*`` environment variables
(app id, salt, endpoint) exactly as a deployed app would be.
"""

from __future__ import annotations

import os
from typing import Any


def _with_td_web() -> bool:
    return os.environ.get("BENCH_TD_WEB") == "1"


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def item(request: Request) -> HTMLResponse:
        return HTMLResponse(f"<p>item {request.path_params['item_id']}</p>")

    app = Starlette(routes=[Route("/items/{item_id:int}", item)])
    if _with_td_web():
        from td_web.asgi import TelemetryDeckMiddleware

        app.add_middleware(TelemetryDeckMiddleware)
    return app


def flask_app() -> Any:
    from flask import Flask

    app = Flask("bench")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return f"<p>item {item_id}</p>"

    if _with_td_web():
        from td_web.flask import TelemetryDeck

        TelemetryDeck().init_app(app)
    return app
