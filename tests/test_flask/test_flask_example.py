"""The example app in-process (its real-server runs are in test_flask_servers.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import APP_ID
from flask import Flask

from td_web import hash_client_user
from td_web.testing import CapturedSignals

EXAMPLE = Path(__file__).resolve().parents[2] / "example_projects" / "flask_app" / "app.py"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_SALT", "example-salt")
    monkeypatch.setenv("TELEMETRYDECK_HANDLE_SIGTERM", "false")  # JSON-parsed by the example
    spec = importlib.util.spec_from_file_location("td_web_flask_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_example_sends_what_its_readme_promises(
    example: ModuleType, td_signals: CapturedSignals
) -> None:
    app: Flask = example.create_app({"TESTING": False})
    client = app.test_client()

    assert client.get("/").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.post("/login", data={"name": "ada"}).status_code == 303
    assert client.get("/api/items/3").json == {"id": 3, "name": "Cowboy hat", "price": 19.99}
    assert client.post("/shop/checkout", data={"item": ["1", "2"]}).status_code == 303
    with client.get("/stream?delay=0") as response:
        assert response.text.count("line") == 5
    assert client.get("/boom").status_code == 500
    assert client.get("/healthz").json == {"status": "ok"}

    routes = [
        s["payload"].get("HTTP.route")
        for s in td_signals
        if s["type"] in ("pageView", "HTTP.request")
    ]
    assert routes == ["/", "/login", "/api/items/{item_id}", "/shop/checkout", "/stream", "/boom"]
    checkout = td_signals.one("Checkout.completed")
    assert checkout["payload"]["Cart.items"] == "2"
    assert checkout["clientUser"] == hash_client_user("ada", "example-salt")
    td_signals.one("Stream.finished")
    td_signals.one("TelemetryDeck.Error.occurred")


def test_the_example_runs_without_an_app_id(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, td_signals: CapturedSignals
) -> None:
    monkeypatch.delenv("TELEMETRYDECK_APP_ID")
    app: Flask = example.create_app()
    assert app.test_client().get("/").status_code == 200
    assert td_signals.types() == []
