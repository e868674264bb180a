from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APP_ID

from td_web._transport import http_library
from td_web.collector import Collector

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

USER_HASH = hashlib.sha256(b"someone").hexdigest()

Post = Callable[..., httpx.Response]


@pytest.fixture(autouse=True)
def _no_telemetrydeck_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI and the client read TELEMETRYDECK_*; a developer's own settings must not leak in."""
    for name in (
        "TELEMETRYDECK_APP_ID",
        "TELEMETRYDECK_SALT",
        "TELEMETRYDECK_ENDPOINT",
        "TELEMETRYDECK_NAMESPACE",
        "TELEMETRYDECK_TEST_MODE",
        "TELEMETRYDECK_ENABLED",
        "TELEMETRYDECK_APP_VERSION",
        "NO_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "collector.db"


@pytest.fixture
def collector(db_path: Path) -> Iterator[Collector]:
    with Collector(db_path, host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def post(collector: Collector, http: httpx.Client) -> Post:
    """POST a batch to the collector: a Python value is sent as JSON, bytes as they are."""

    def send(
        body: Any,
        path: str = "/v2/",
        content_type: str | None = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        return http.post(collector.url + path, content=content, headers=all_headers)

    return send


def make_signal(**changes: Any) -> dict[str, Any]:
    """A signal exactly as td_web sends one; keyword arguments replace (or, as None via
    ``drop=[...]``, remove) fields."""
    signal: dict[str, Any] = {
        "appID": APP_ID,
        "clientUser": USER_HASH,
        "sessionID": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "type": "Example.happened",
        "isTestMode": False,
        "payload": {
            "TelemetryDeck.SDK.name": "td_web",
            "HTTP.route": "/articles/<slug>",
            "TelemetryDeck.Signal.durationInSeconds": "0.125",
        },
    }
    for name in changes.pop("drop", ()):
        del signal[name]
    signal.update(changes)
    return signal


@pytest.fixture
def signal_factory() -> Callable[..., dict[str, Any]]:
    return make_signal
