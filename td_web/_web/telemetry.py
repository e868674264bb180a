"""The request-scoped helper (``request.telemetry``) and the record its request becomes."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._log import logger, throttled
from .._signal import RECORD_OVERHEAD, CustomSignal, Signal, SignalBuilder
from .payload import request_payload

if TYPE_CHECKING:
    from . import RequestView, WebTelemetry

_current: contextvars.ContextVar[Telemetry | None] = contextvars.ContextVar(
    "td_web_telemetry", default=None
)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class Telemetry:
    """Signals from inside one request, carrying its session, user and default payload.

    Django and Flask: ``request.telemetry``; Starlette and FastAPI: ``request.state.telemetry``;
    anywhere inside the request: ``td_web.current()``.
    """

    __slots__ = (
        "_error",
        "_finished",
        "_inert_reason",
        "_native",
        "_new_session",
        "_session_key",
        "_start",
        "_tracked",
        "_user_lookup",
        "_view",
        "_web",
        "route",
    )

    def __init__(
        self,
        web: WebTelemetry | None,
        view: RequestView | None,
        native: Any,
        session_key: str | None,
        new_session: bool,
        tracked: bool,
    ) -> None:
        self._web = web
        self._view = view
        self._native = native
        self._session_key = session_key
        self._new_session = new_session
        self._tracked = tracked
        self._start = time.perf_counter()
        self._user_lookup: Callable[[], object] | None = None
        self._error: BaseException | None = None
        self._finished = False
        self._inert_reason: str | None = None
        #: The matched route template, when the adapter learns it before the response.
        self.route: str | None = None

    @classmethod
    def inert(cls, reason: str, view: RequestView | None = None, native: Any = None) -> Telemetry:
        """A helper that sends nothing, for a known reason (disabled, misconfigured, opted out):
        its signals are dropped with a debug log saying why, not a warning."""
        helper = cls(None, view, native, None, False, False)
        helper._inert_reason = reason
        return helper

    # -- for views ---------------------------------------------------------------------------

    @property
    def tracked(self) -> bool:
        """Whether this request gets automatic signals (not excluded, not opted out)."""
        return self._tracked

    @property
    def active(self) -> bool:
        """Whether signals from this helper are sent (False outside a request, under GPC)."""
        return self._web is not None and self._web.client.enabled

    def signal(
        self,
        signal_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        float_value: float | int | str | None = None,
        client_user: object = None,
    ) -> bool:
        """Queue a custom signal with this request's session and user; never blocks."""
        web = self._web
        if web is None:
            if self._inert_reason is not None:
                logger.debug("td_web: signal(%r) dropped: %s", signal_type, self._inert_reason)
            else:
                throttled.warning(
                    "no-request",
                    "td_web: current().signal(%r) was called outside a request handled by a "
                    "td_web middleware; dropped",
                    signal_type,
                )
            return False
        try:
            user = client_user if client_user is not None else self.user_id()
            if user is not None:
                user = _text(user)
            record = CustomSignal(signal_type, payload, float_value, user, None, self._session_key)
            return web.client.enqueue(record)
        except Exception:
            if web.client.config.strict:
                raise
            logger.exception("td_web: request.telemetry.signal(%r) failed", signal_type)
            return False

    def user_id(self) -> object:
        """The identifier of the request's user (hashed before sending), or None."""
        web = self._web
        if web is None:
            return None
        override = web.settings.client_user
        try:
            if override is not None:
                return override(self._native)
            if self._user_lookup is not None:
                return self._user_lookup()
        except Exception:
            logger.exception("td_web: looking up the request's user failed; sent as anonymous")
        return None

    @property
    def session_id(self) -> str | None:
        """The wire sessionID of this request (a one-way derivation of its session key)."""
        if self._web is None or self._session_key is None:
            return None
        return self._web.client.builder.session_id_for(self._session_key)

    # -- for adapters ------------------------------------------------------------------------

    def set_user_lookup(self, lookup: Callable[[], object]) -> None:
        self._user_lookup = lookup

    def activate(self) -> contextvars.Token[Telemetry | None]:
        return _current.set(self)

    @staticmethod
    def deactivate(token: contextvars.Token[Telemetry | None]) -> None:
        try:
            _current.reset(token)
        except ValueError:  # reset from another context (a streamed body's last chunk)
            _current.set(None)

    def record_exception(self, exc: BaseException) -> None:
        """The view raised: the request signal reports 500 and an error signal is added."""
        if self._error is None:
            self._error = exc

    def set_cookie_header(self, app_set_cookies: Iterable[str] = ()) -> str | None:
        """The ``Set-Cookie`` value for the response, or None when no cookie is due.

        ``app_set_cookies`` are the response's own ``Set-Cookie`` values: when the application
        set or deleted td_web's cookie itself (a "forget me" view), its word wins.
        """
        web = self._web
        if web is None or not self._tracked or self._session_key is None:
            return None
        if not web.sessions.sets_cookie:
            return None
        prefix = web.sessions.cookie_name + "="
        if any(value.lstrip().startswith(prefix) for value in app_set_cookies):
            return None
        assert self._view is not None
        return web.sessions.set_cookie_header(self._session_key, self._view.scheme == "https")

    def finish(
        self, status: int | None, content_type: str | None = None, route: str | None = None
    ) -> None:
        """Queue this request's automatic signals; only the first call counts."""
        if self._finished:
            return
        self._finished = True
        web = self._web
        if web is None or not self._tracked:
            return
        try:
            duration = time.perf_counter() - self._start
            view = self._view
            assert view is not None
            if self._error is not None and (status is None or status < 500):
                status = 500
            page_view = (
                status is not None
                and 200 <= status < 300
                and view.method == "GET"
                and content_type is not None
                and content_type.startswith(_HTML_TYPES)
            )
            user = self.user_id()
            error = self._error
            # Only strings go on the queue: the user object and the exception (with its
            # traceback and every frame's locals) would be held until the sender runs, and
            # their __str__ would run on the sender's thread.
            web.client.enqueue(
                RequestSignals(
                    web,
                    view,
                    status or 500,
                    route or self.route,
                    duration,
                    page_view,
                    None if user is None else _text(user),
                    self._session_key,
                    self._new_session,
                    None if error is None else _qualified_name(type(error)),
                    _message(error)
                    if error is not None and web.settings.send_error_messages
                    else None,
                )
            )
            self._error = None
        except Exception:
            logger.exception("td_web: recording the request failed")


class RequestSignals:
    """One handled request, expanded on the sender thread into its automatic signals."""

    __slots__ = (
        "duration",
        "error_id",
        "error_message",
        "new_session",
        "page_view",
        "route",
        "session_key",
        "status",
        "user",
        "view",
        "web",
    )

    def __init__(
        self,
        web: WebTelemetry,
        view: RequestView,
        status: int,
        route: str | None,
        duration: float,
        page_view: bool,
        user: str | None,
        session_key: str | None,
        new_session: bool,
        error_id: str | None,
        error_message: str | None,
    ) -> None:
        self.web = web
        self.view = view
        self.status = status
        self.route = route
        self.duration = duration
        self.page_view = page_view
        self.user = user
        self.session_key = session_key
        self.new_session = new_session
        self.error_id = error_id
        self.error_message = error_message

    def approx_size(self) -> int:
        view = self.view
        cookies = view.cookies
        return (
            RECORD_OVERHEAD
            + len(view.path)
            + len(view.query_string)
            + len(view.host)
            + len(view.referer or "")
            + len(view.accept_language or "")
            + len(view.user_agent or "")
            + (len(cookies) if type(cookies) is str else 0)
            + len(self.user or "")
            + len(self.error_message or "")
        )

    def signals(self, builder: SignalBuilder) -> Iterable[Signal]:
        settings = self.web.settings
        view = self.view
        route = self.web.normalize_route(self.route) if self.route else None
        built: list[Signal | None] = []
        user, key = self.user, self.session_key
        if self.new_session and settings.session_started_signal:
            built.append(
                builder.build(
                    settings.session_started_signal, None, client_user=user, session_key=key
                )
            )
        if self.error_id is not None and settings.error_signal:
            error_payload = {
                "TelemetryDeck.Error.id": self.error_id,
                "TelemetryDeck.Error.category": "thrown-exception",
                "HTTP.method": view.method,
                "path": view.path,
            }
            if route is not None:
                error_payload["HTTP.route"] = route
            if self.error_message is not None:
                error_payload["TelemetryDeck.Error.message"] = self.error_message
            built.append(
                builder.build(
                    settings.error_signal, error_payload, client_user=user, session_key=key
                )
            )
        signal_type = settings.page_view_signal if self.page_view else settings.request_signal
        if signal_type:
            payload = request_payload(
                method=view.method,
                status=self.status,
                route=route,
                scheme=view.scheme,
                host=view.host,
                path=view.path,
                query_string=view.query_string,
                referer=view.referer,
                accept_language=view.accept_language,
                duration=self.duration,
                page_view=self.page_view,
            )
            built.append(
                builder.build(
                    signal_type, None, extra_payload=payload, client_user=user, session_key=key
                )
            )
        return [signal for signal in built if signal is not None]


def _qualified_name(cls: type) -> str:
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<unprintable message>"


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        logger.exception("td_web: the user identifier could not be turned into a string")
        return ""


_NULL = Telemetry(None, None, None, None, False, False)


def current() -> Telemetry:
    """The helper of the request being handled; outside a request, one that sends nothing
    (and says so in a throttled warning)."""
    return _current.get() or _NULL
