"""FastAPI: the helper as a dependency, and td_web.asgi staying free of FastAPI imports."""

from __future__ import annotations

import subprocess
import sys

from fastapi import Depends, FastAPI, WebSocket
from starlette.requests import Request
from test_asgi.asgi_support import APP_ID, TestClient

import td_web
from td_web import Telemetry
from td_web.asgi import TelemetryDeckMiddleware, TelemetryDep, get_telemetry
from td_web.testing import CapturedSignals


def shop() -> FastAPI:
    app = FastAPI()
    app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)

    @app.post("/checkout")
    async def checkout(request: Request, telemetry: TelemetryDep) -> dict[str, bool]:
        assert telemetry is request.state.telemetry
        assert telemetry is td_web.current()
        telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
        return {"ok": True}

    @app.get("/cart/{cart_id}")
    def cart(cart_id: int, telemetry: Telemetry = Depends(get_telemetry)) -> dict[str, int]:  # noqa: B008
        # A sync endpoint runs in a worker thread; the dependency still finds the helper.
        telemetry.signal("Cart.viewed")
        return {"cart_id": cart_id}

    @app.websocket("/ws")
    async def socket(websocket: WebSocket, telemetry: TelemetryDep) -> None:
        await websocket.accept()
        await websocket.send_json({"active": telemetry.active})
        await websocket.close()

    return app


def test_annotated_dependency(td_signals: CapturedSignals) -> None:
    response = TestClient(shop()).post("/checkout")
    assert response.json() == {"ok": True}
    custom = td_signals.one("Checkout.completed")
    assert custom["payload"]["Cart.items"] == "3"
    assert custom["sessionID"] == td_signals.one("HTTP.request")["sessionID"]
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/checkout"


def test_depends_get_telemetry_in_a_sync_endpoint(td_signals: CapturedSignals) -> None:
    assert TestClient(shop()).get("/cart/5").json() == {"cart_id": 5}
    assert td_signals.one("Cart.viewed")["sessionID"] == td_signals.one("HTTP.request")["sessionID"]
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/cart/{cart_id}"


def test_websockets_get_the_inactive_helper(td_signals: CapturedSignals) -> None:
    with TestClient(shop()).websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"active": False}
    assert td_signals.types() == []


def test_importing_the_adapter_does_not_import_fastapi() -> None:
    code = (
        "import sys, td_web.asgi\n"
        "assert 'fastapi' not in sys.modules, 'fastapi imported'\n"
        "from td_web.asgi import TelemetryDep\n"
        "assert 'fastapi' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
