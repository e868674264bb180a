"""The core's neutral request view, read straight from the WSGI environ.

Only plain dict reads: no header parsing, no Werkzeug properties (``request.host`` would also
run the app's trusted-host check, which can raise).
"""

from __future__ import annotations

from typing import Any

from .._web import RequestView, WebTelemetry
from .._web.payload import host_with_port


def request_view(environ: dict[str, Any], web: WebTelemetry) -> RequestView:
    """The view ``web`` begins the request with."""
    get = environ.get
    path = get("SCRIPT_NAME", "") + get("PATH_INFO", "")
    if not path.isascii():
        # WSGI hands the path over as latin-1 decoded bytes; the client sent UTF-8.
        path = path.encode("latin-1", "replace").decode("utf-8", "replace")
    host = get("HTTP_HOST")
    if not host:
        host = host_with_port(
            get("SERVER_NAME", ""), get("SERVER_PORT"), get("wsgi.url_scheme", "")
        )
    return web.view_from_meta(
        environ, environ["REQUEST_METHOD"], get("wsgi.url_scheme", "http"), host, path or "/"
    )
