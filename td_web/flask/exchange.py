"""One request's telemetry on its way between the WSGI middleware and Flask's hooks, and the
body wrapper that finishes it when a streamed response is complete."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from flask import has_request_context

from .._log import logger
from .._web import Telemetry
from .request_view import request_view
from .users import resolve_user

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse

    from .state import AppTelemetry

#: The environ key under which the middleware leaves the exchange for the hooks.
EXCHANGE_KEY = "td_web.flask.exchange"


class Exchange:
    __slots__ = (
        "app_state",
        "complete",
        "content_type",
        "frozen_user",
        "native",
        "server_start_response",
        "status",
        "telemetry",
        "token",
        "user_frozen",
    )

    def __init__(
        self, app_state: AppTelemetry, server_start_response: StartResponse | None = None
    ) -> None:
        self.app_state = app_state
        self.server_start_response = server_start_response
        self.telemetry: Telemetry | None = None
        self.token: contextvars.Token[Telemetry | None] | None = None
        self.native: Any = None
        self.status: int | None = None
        self.content_type: str | None = None
        #: The body was fully produced before it was returned (not a stream).
        self.complete = False
        #: Until before_request finds a user source, the user is known: anonymous.
        self.user_frozen = True
        self.frozen_user: object = None

    # -- the response starts ---------------------------------------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> Callable[[bytes], object]:
        """The app's start_response: Flask calls it while the request context is still alive,
        with the final status and headers (after every after_request function, after the
        error handlers), so this is where the response is read and the cookie added."""
        try:
            self.status = int(status[:3])
            telemetry = self.telemetry
            app_cookies: list[str] = []
            cache_control: str | None = None
            # Read for an untracked request too (without a telemetry the request failed before
            # td_web's hook and is still recorded, begin_late): a sampled-out session's cookie
            # and a consent choice are still set, and only where the app and the cache allow.
            complete = False
            for name, value in headers:
                lowered = name.lower()
                if lowered == "content-type":
                    self.content_type = value
                elif lowered == "content-length":
                    complete = True
                elif lowered == "set-cookie":
                    app_cookies.append(value)
                elif lowered == "cache-control":
                    cache_control = value
            # A body of known length was produced before it is sent (lists, error pages,
            # files the server may sendfile); one without is a stream, timed to its end.
            self.complete = complete
            if telemetry is not None:
                for header in telemetry.response_cookies(app_cookies, cache_control):
                    headers.append(("Set-Cookie", header))
                self.freeze_user()
        except Exception:
            logger.exception("td_web: recording the response failed")
        assert self.server_start_response is not None
        return self.server_start_response(status, headers, exc_info)

    # -- the user ----------------------------------------------------------------------------

    def user(self) -> object:
        """The Telemetry's user lookup: live inside the request, frozen once it ends."""
        if self.user_frozen:
            return self.frozen_user
        if not has_request_context():
            return None
        state = self.app_state
        return resolve_user(
            state.client_user,
            state.extension.loaded_user_loader,
            state.uses_flask_login,
            self.native,
        )

    def freeze_user(self) -> None:
        """Resolve the user while Flask's request context still exists: the automatic signal
        is finished after it is gone (Flask-Login's ``current_user`` and ``g`` with it)."""
        telemetry = self.telemetry
        if telemetry is None or self.user_frozen or not telemetry.tracked:
            return
        self.frozen_user = telemetry.user_id()
        self.user_frozen = True

    # -- the end -----------------------------------------------------------------------------

    def begin_late(self, environ: dict[str, Any]) -> Telemetry:
        """The request failed before td_web's before_request hook ran: account for it now."""
        web = self.app_state.web
        telemetry = self.telemetry = web.begin(request_view(environ, web.geo.environ_keys), None)
        return telemetry

    def respond(self, body: Iterable[bytes], environ: dict[str, Any]) -> Iterable[bytes]:
        """Finish now when the body is complete; otherwise when the server closes it."""
        try:
            telemetry = self.telemetry or self.begin_late(environ)
            if self.complete or not telemetry.tracked:
                self.finish()
                return body
            return StreamedBody(body, self)
        except Exception:
            logger.exception("td_web: recording the response failed")
            return body

    def fail(self, exc: BaseException, environ: dict[str, Any] | None = None) -> None:
        try:
            telemetry = self.telemetry
            if telemetry is None and environ is not None:
                telemetry = self.begin_late(environ)
            if telemetry is not None and isinstance(exc, Exception):
                telemetry.record_exception(exc)
            self.finish()
        except Exception:
            logger.exception("td_web: recording an unhandled exception failed")

    def finish(self) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        telemetry.finish(self.status, self.content_type)
        token = self.token
        if token is not None:
            self.token = None
            Telemetry.deactivate(token)


class StreamedBody:
    """A streamed response body, passed through chunk by chunk; the request is finished when
    the body is exhausted or closed, whichever comes first (a client that disconnects makes
    the server close it early: still exactly one signal)."""

    __slots__ = ("_body", "_chunks", "_exchange")

    def __init__(self, body: Iterable[bytes], exchange: Exchange) -> None:
        self._body = body
        self._chunks = iter(body)
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self._exchange.finish()
            raise
        except BaseException as exc:
            self._exchange.fail(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._exchange.finish()
