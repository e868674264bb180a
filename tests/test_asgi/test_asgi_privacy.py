"""Privacy of what only the ASGI adapter offers: ``client=`` an existing TelemetryDeck shared
with the middleware. The canary tests every adapter shares are in ``test_adapters``."""

from __future__ import annotations

from conftest import APP_ID
from ingest_server import IngestServer
from privacy_canaries import assert_no_canary, canary_request, everything_received
from starlette.applications import Starlette
from starlette.middleware import Middleware
from test_adapters.privacy_asgi import ROUTES, SALT, TestClient, client_user, send

from td_web import TelemetryDeck
from td_web.asgi import TelemetryDeckMiddleware


def test_a_shared_client_with_an_existing_td_web_client_sends_nothing_raw(
    ingest: IngestServer,
) -> None:
    """``client=`` an existing TelemetryDeck (the documented way to share one)."""
    client = TelemetryDeck(app_id=APP_ID, salt=SALT, endpoint=ingest.url, flush_interval=3600)
    try:
        app = Starlette(
            routes=ROUTES,
            middleware=[
                Middleware(TelemetryDeckMiddleware, client=client, client_user=client_user)
            ],
        )
        assert send(TestClient(app), canary_request("/custom/")) == 200
        assert client.flush(5)
    finally:
        client.close(1)

    assert {s["type"] for s in ingest.accepted_signals} >= {"Privacy.checked", "HTTP.request"}
    assert_no_canary(everything_received(ingest))
