"""One request's telemetry on its way between the WSGI middleware and Flask's hooks; a
streamed response is finished when its body ends (``_web/body.py``)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._log import logger
from .._web import Telemetry, WebTelemetry
from .._web.body import FinishingIterator
from .request_view import request_view

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse

#: The environ key under which the middleware leaves the exchange for the hooks.
EXCHANGE_KEY = "td_web.flask.exchange"


class Exchange:
    __slots__ = (
        "complete",
        "content_type",
        "server_start_response",
        "status",
        "telemetry",
        "token",
        "web",
    )

    def __init__(
        self, web: WebTelemetry, server_start_response: StartResponse | None = None
    ) -> None:
        self.web = web
        self.server_start_response = server_start_response
        self.telemetry: Telemetry | None = None
        self.token: contextvars.Token[Telemetry | None] | None = None
        self.status: int | None = None
        self.content_type: str | None = None
        #: The body was fully produced before it was returned (not a stream).
        self.complete = False

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
                # Flask-Login's current_user and g end with the request context, before the
                # automatic signal is finished (and before a streamed body is sent).
                telemetry.settle_user()
        except Exception:
            logger.exception("td_web: recording the response failed")
        assert self.server_start_response is not None
        return self.server_start_response(status, headers, exc_info)

    # -- the end -----------------------------------------------------------------------------

    def begin_late(self, environ: dict[str, Any]) -> Telemetry:
        """The request failed before td_web's before_request hook ran: account for it now."""
        web = self.web
        telemetry = self.telemetry = web.begin(request_view(environ, web), None)
        return telemetry

    def respond(self, body: Iterable[bytes], environ: dict[str, Any]) -> Iterable[bytes]:
        """Finish now when the body is complete; otherwise when the server closes it."""
        try:
            telemetry = self.telemetry or self.begin_late(environ)
            if self.complete or not telemetry.tracked:
                self.finish()
                return body
            return FinishingIterator(body, self._body_ended)
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

    def _body_ended(self, interrupted: BaseException | None) -> None:
        if interrupted is None:
            self.finish()
        else:
            self.fail(interrupted)

    def finish(self) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        telemetry.finish(self.status, self.content_type)
        token = self.token
        if token is not None:
            self.token = None
            Telemetry.deactivate(token)
