"""Hostile requests through a Flask app, driven as a WSGI server drives it: huge and malformed
headers, invalid and forged cookies, odd Accept-Language, Referer and Host values, invalid
UTF-8 in paths; the environ built as PEP 3333 says (latin-1) and surrogate-escaped, as servers
that decode UTF-8 build it. Each is answered exactly as the same app answers it without
td_web; td_web logs no error, drops nothing, and what it sends passes the collector's
validation."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, request
from ingest_server import IngestServer
from privacy_canaries import (
    HostileRequest,
    IngestWindow,
    call_wsgi,
    check_hostile_outcome,
    wsgi_cases,
    wsgi_environ,
)

from td_web import TelemetryDeck as Client
from td_web.flask import TelemetryDeck


def _make_app(client: Client | None) -> Flask:
    """The same app, with td_web (sending through ``client``) or without."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="hostile", TELEMETRYDECK_HANDLE_SIGTERM=False)
    if client is not None:
        TelemetryDeck().init_app(app, client=client, respect_gpc=True)

    @app.route("/", defaults={"rest": ""})
    @app.route("/<path:rest>")
    def echo(rest: str) -> Response:
        """What Flask made of the request: td_web must not change any of it."""
        facts = {
            "method": request.method,
            "path": request.path,
            "rest": rest,
            "args": list(request.args.items(multi=True)),
            "cookies": list(request.cookies.items(multi=True)),
            "headers": [
                request.headers.get(name)
                for name in ("Accept-Language", "Referer", "Sec-GPC", "User-Agent", "Host")
            ],
        }
        return Response(f"<pre>{facts!a}</pre>", mimetype="text/html")

    return app


@pytest.fixture(scope="module")
def apps(module_client: Client) -> dict[bool, Flask]:
    return {True: _make_app(module_client), False: _make_app(None)}


@pytest.mark.parametrize(("case", "decoding"), wsgi_cases())
def test_hostile_request(
    case: HostileRequest,
    decoding: Any,
    module_ingest: IngestServer,
    module_client: Client,
    apps: dict[bool, Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = IngestWindow(module_ingest)
    outcomes = {key: call_wsgi(app, wsgi_environ(case, decoding)) for key, app in apps.items()}

    check_hostile_outcome(
        case, outcomes[True], outcomes[False], module_client, window, caplog.records
    )
