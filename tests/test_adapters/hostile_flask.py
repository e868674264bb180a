"""The echo app on Flask: it echoes what Flask made of the request, which td_web must not
change. The hostile-request tests compare its answers with td_web (sending through a given
client) and without."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response, request

from td_web import TelemetryDeck as Client
from td_web.flask import TelemetryDeck as FlaskTelemetryDeck


def flask_app(client: Client | None) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="hostile", TELEMETRYDECK_HANDLE_SIGTERM=False)
    if client is not None:
        FlaskTelemetryDeck().init_app(app, client=client, respect_gpc=True)

    @app.route("/", defaults={"rest": ""})
    @app.route("/<path:rest>")
    def echo(rest: str) -> Response:
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


@contextmanager
def serve_flask(client: Client | None) -> Iterator[Flask]:
    yield flask_app(client)
