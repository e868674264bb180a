"""The WSGI middleware around ``app.wsgi_app``: it alone sees the end of every response,
the streamed ones included, and exceptions that Flask lets propagate."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from types import MethodType
from typing import TYPE_CHECKING, Any

from .._web import WebTelemetry
from .exchange import EXCHANGE_KEY, Exchange

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class TelemetryMiddleware:
    """Hands each request an :class:`Exchange`; Flask's hooks fill it in, this finishes it."""

    __slots__ = ("_method_of", "web", "wsgi_app")

    def __init__(self, wsgi_app: WSGIApplication, web: WebTelemetry) -> None:
        self.web = web
        #: For a method bound to an object (Flask's own ``app.wsgi_app``): a weak reference
        #: to that object, with ``wsgi_app`` the plain function. The bound method would be a
        #: reference cycle app -> middleware -> app, and an app dropped by its owner would
        #: wait for the cyclic garbage collector instead of being freed at once.
        self._method_of: weakref.ref[Any] | None = None
        self.wsgi_app: Callable[..., Iterable[bytes]] = wsgi_app
        if isinstance(wsgi_app, MethodType):
            try:
                self._method_of = weakref.ref(wsgi_app.__self__)
            except TypeError:  # an object without weak references: keep the bound method
                return
            self.wsgi_app = wsgi_app.__func__

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        exchange = Exchange(self.web, start_response)
        environ[EXCHANGE_KEY] = exchange
        try:
            if self._method_of is None:
                body = self.wsgi_app(environ, exchange.start_response)
            else:
                body = self.wsgi_app(self._method_of(), environ, exchange.start_response)
        except BaseException as exc:
            # Flask let it propagate (PROPAGATE_EXCEPTIONS, testing, debug): it answers 500.
            exchange.fail(exc, environ)
            raise
        return exchange.respond(body, environ)
