"""The dashboard options as ASGI keyword arguments, through real ASGI calls."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from test_asgi.asgi_support import APP_ID, ASGIServer, http_scope

from td_web import ConfigurationError
from td_web.asgi import TelemetryDeckMiddleware
from td_web.testing import CapturedSignals

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _page(request: Request) -> Response:
    return HTMLResponse("<p>hi</p>")


async def test_country_device_sources_and_visitor_cookie(td_signals: CapturedSignals) -> None:
    app = Starlette(routes=[Route("/", _page)])
    middleware = TelemetryDeckMiddleware(
        app,
        app_id=APP_ID,
        salt="asgi-salt",
        country_headers=["CloudFront-Viewer-Country"],
        visitor_cookie=True,
        send_click_ids=True,
        build_number="77",
        environment="staging",
    )
    server = ASGIServer()
    scope = http_scope(
        "/",
        headers=[
            ("user-agent", CHROME),
            ("cloudfront-viewer-country", "IT"),
            ("cf-ipcountry", "US"),  # not trusted
        ],
        query_string=b"utm_source=news&ref=friend&gclid=abc123",
    )
    await server.run(middleware, scope)
    assert server.status == 200
    assert any(value.startswith(b"td_visitor=") for value in server.header(b"set-cookie"))
    payload = td_signals.one("pageView")["payload"]
    assert payload["country.isoCode"] == "IT" and payload["continent.code"] == "EU"
    assert payload["browserName"] == "Chrome" and payload["isDesktop"] == "true"
    assert payload["combinedSource"] == "friend"
    assert payload["GCLID"] == "abc123"
    assert payload["TelemetryDeck.RunContext.targetEnvironment"] == "staging"
    assert payload["TelemetryDeck.AppInfo.buildNumber"] == "77"
    assert td_signals.types().count("TelemetryDeck.Acquisition.newInstallDetected") == 1


def test_bad_dashboard_keyword_is_named() -> None:
    app = Starlette(routes=[Route("/", _page)])
    with pytest.raises(ConfigurationError, match="country_headers"):
        TelemetryDeckMiddleware(app, app_id=APP_ID, country_headers=["bad header"])
    with pytest.raises(ConfigurationError, match="time_zone"):
        TelemetryDeckMiddleware(app, app_id=APP_ID, time_zone="Mars/Olympus_Mons")
