"""The WSGI middleware around ``app.wsgi_app``: it alone sees the end of every response,
the streamed ones included, and exceptions that Flask lets propagate."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .exchange import EXCHANGE_KEY, Exchange

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .state import AppTelemetry


class TelemetryMiddleware:
    """Hands each request an :class:`Exchange`; Flask's hooks fill it in, this finishes it."""

    __slots__ = ("app_state", "wsgi_app")

    def __init__(self, wsgi_app: WSGIApplication, app_state: AppTelemetry) -> None:
        self.wsgi_app = wsgi_app
        self.app_state = app_state

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        exchange = Exchange(self.app_state, start_response)
        environ[EXCHANGE_KEY] = exchange
        try:
            body = self.wsgi_app(environ, exchange.start_response)
        except BaseException as exc:
            # Flask let it propagate (PROPAGATE_EXCEPTIONS, testing, debug): it answers 500.
            exchange.fail(exc, environ)
            raise
        return exchange.respond(body, environ)
