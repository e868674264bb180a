"""The request-scoped helper (``request.telemetry``) and the record its request becomes."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._before_send import RequestOrigin
from .._custom import SignalCall, custom_record
from .._log import logger, throttled
from .._presets import Presets
from .._properties import request_properties
from .._signal import Record
from .consent import DENIED, GRANTED
from .request_signals import RequestSignals
from .sampling import SAMPLE_RATE_KEY, SessionSampler
from .sessions import shared_cacheable

if TYPE_CHECKING:
    from .._client import TelemetryDeck
    from . import RequestView, WebTelemetry
    from .visitors import Visit

_current: contextvars.ContextVar[Telemetry | None] = contextvars.ContextVar(
    "td_web_telemetry", default=None
)
#: "Not given": ask the adapter's lookup (a user id of None means anonymous).
_ASK: Any = object()
_HTML_TYPES = ("text/html", "application/xhtml+xml")
#: A ``Set-Cookie`` value as ``(name, value, attributes, header)``: ``response_cookie_parts``.
CookieParts = tuple[str, str, str, str]
#: An exception message is kept (when sent at all) up to the payload's value limit.
_MAX_MESSAGE_LENGTH = 4096


class Telemetry(Presets):
    """Signals from inside one request, carrying its session, user and default payload.

    Django and Flask: ``request.telemetry``; Starlette and FastAPI: ``request.state.telemetry``;
    anywhere inside the request: ``td_web.current()``.
    """

    __slots__ = (
        "_consent_change",
        "_error",
        "_finished",
        "_in_flight",
        "_inert_reason",
        "_native",
        "_new_session",
        "_properties",
        "_sample_rate",
        "_sampled_out",
        "_session_cookie",
        "_session_key",
        "_silenced",
        "_start",
        "_tracked",
        "_user",
        "_user_lookup",
        "_view",
        "_visit",
        "_visit_refused",
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
        user_lookup: Callable[[Any], object] | None = None,
        session_cookie: CookieParts | None = None,
    ) -> None:
        self._web = web
        self._view = view
        self._native = native
        self._session_key = session_key
        self._new_session = new_session
        self._tracked = tracked
        #: The ``Set-Cookie`` value that keeps the session in td_web's own cookie, made once at
        #: ``begin`` (None: the session lives elsewhere, or the request starts none), with its
        #: parts (``CookieParts``); the response sends it unless the app, a shared cache or a
        #: consent change says otherwise.
        self._session_cookie = session_cookie
        self._start = time.perf_counter()
        #: The adapter's "who is signed in now" (given its request, ``native``), valid only
        #: while that request is alive.
        self._user_lookup = user_lookup
        #: The request's user once settled (``settle_user``); _ASK until then.
        self._user: object = _ASK
        self._error: BaseException | None = None
        self._finished = False
        #: Counted in its WebTelemetry's requests in flight until finish() (``begin``).
        self._in_flight = False
        self._inert_reason: str | None = None
        #: Why nothing is sent although the request has a web telemetry (opt-out, consent,
        #: sampled out); the helper still sets or keeps cookies.
        self._silenced: str | None = None
        self._sampled_out = False
        self._sample_rate: float | None = None
        self._consent_change: str | None = None
        self._properties: dict[str, Any] | bool | None = False  # False: not evaluated yet
        self._visit: Visit | None = None
        #: The response may be stored by a shared cache: no visitor cookie, so no visit either.
        self._visit_refused = False
        #: The matched route template, when the adapter learns it before the response.
        self.route: str | None = None

    @classmethod
    def inert(cls, reason: str, view: RequestView | None = None, native: Any = None) -> Telemetry:
        """A helper that sends nothing, for a known reason (disabled, misconfigured, opted out):
        its signals are dropped with a debug log saying why, not a warning."""
        helper = cls(None, view, native, None, False, False)
        helper._inert_reason = reason
        return helper

    def silence(self, reason: str) -> Telemetry:
        """Send nothing from this request (automatic or custom), for a known reason."""
        self._silenced = reason
        self._tracked = False
        return self

    def web_and_view(self) -> tuple[WebTelemetry | None, RequestView | None]:
        return self._web, self._view

    def apply_sampling(self, rate: float) -> None:
        """Keep or drop this request's session at ``rate`` (see ``sampling``)."""
        if not SessionSampler.keeps(self._session_key, rate):
            # The session cookie is still set and slid: the next request must find the
            # same session, and so the same decision.
            self._sampled_out = True
            self.silence(f"its session is sampled out (rate {rate})")
        elif rate < 1.0:
            self._sample_rate = rate

    # -- for views ---------------------------------------------------------------------------

    @property
    def tracked(self) -> bool:
        """Whether this request gets automatic signals (not excluded, not opted out)."""
        return self._tracked

    @property
    def active(self) -> bool:
        """Whether signals from this helper are sent (False outside a request, under GPC or
        DNT, opted out, without a required consent, or sampled out)."""
        client = self._live_client()
        return client is not None and client.enabled

    def opt_out(self) -> None:
        """Opt this browser out: the response sets the opt-out cookie, and from now on
        nothing is sent for it (this request's signals included)."""
        if self._web is None:
            logger.debug("td_web: opt_out() outside a tracked request; nothing to record")
            return
        self._consent_change = DENIED
        self.silence("the browser opted out")

    def opt_in(self) -> None:
        """Record consent (or undo an opt-out): the response sets the cookie; tracking
        starts with the browser's next request."""
        if self._web is None:
            logger.debug("td_web: opt_in() outside a tracked request; nothing to record")
            return
        self._consent_change = GRANTED

    def signal(
        self,
        signal_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        float_value: float | int | str | None = None,
        client_user: object = None,
    ) -> bool:
        """Queue a custom signal with this request's session and user; never blocks.

        ``client_user`` (hashed before sending) overrides the request's user. In strict mode a
        bad signal raises here; otherwise it is logged and dropped."""
        client = self._live_client()
        if client is None:
            self._log_dropped(signal_type)
            return False
        try:
            call = SignalCall(signal_type, payload, float_value, client_user)
            return client.enqueue(self._custom_record(client, call))
        except Exception:
            if client.config.strict:
                raise
            logger.exception("td_web: %s.signal(%r) failed", self._caller, signal_type)
            return False

    # The three steps of signal() that work outside a request (RunTelemetry) does its own way.

    #: How the caller reaches this helper, for the log line when a signal fails.
    _caller = "request.telemetry"

    def _live_client(self) -> TelemetryDeck | None:
        """The client this helper's signals go to; None when it sends nothing."""
        web = self._web
        return None if web is None or self._silenced is not None else web.client

    def _log_dropped(self, signal_type: str) -> None:
        """Say why a signal of a helper that sends nothing was dropped."""
        reason = self._silenced or self._inert_reason
        if reason is not None:
            logger.debug("td_web: signal(%r) dropped: %s", signal_type, reason)
        else:
            throttled.warning(
                "no-request",
                "td_web: current().signal(%r) was called outside a request handled by a "
                "td_web middleware; dropped. Outside requests, call signal() on the client.",
                signal_type,
            )

    def _custom_record(self, client: TelemetryDeck, call: SignalCall) -> Record:
        """The signal as the sender queues it, with this helper's session and user."""
        web = self._web
        assert web is not None  # _live_client returned its client
        user = call.client_user if call.client_user is not None else self._current_user(web)
        if user is not None:
            user = _text(user)
        view = self._view
        origin = (
            None if view is None or client.builder.before_send is None else self._origin(web, view)
        )
        return custom_record(
            client.builder,
            client.config.strict,
            call._replace(client_user=user),
            session_key=self._session_key,
            extra_payload=self._extra_payload(),
            origin=origin,
        )

    def _origin(self, web: WebTelemetry, view: RequestView) -> RequestOrigin:
        """The request a custom signal came from, as ``before_send`` sees it: path and route
        cleaned exactly as the automatic signals' (the hook must not see a secret the wire
        never would)."""
        route = self.route
        if route:
            route = web.redactor.path(web.normalize_route(route))
        return RequestOrigin(view.method, web.redactor.path(view.path), route)

    def _extra_payload(self) -> dict[str, Any] | None:
        """Per-request properties (a callable default_payload, evaluated once on this
        thread) and the sample rate: what every signal of this request carries."""
        properties = self._properties
        if properties is False:
            web = self._web
            make = None if web is None else web.make_properties
            properties = None
            if make is not None:
                native = _native(self._native)
                properties = request_properties(make, self._view if native is None else native)
            self._properties = properties
        assert properties is not True
        if self._sample_rate is None:
            return properties
        return _merged_extra(properties, self._sample_rate)

    def _strict(self) -> bool:
        return self._web is not None and self._web.client.config.strict

    def settle_user(self, user: object = _ASK) -> None:
        """Fix the request's user while the adapter's request context is still alive (the
        response starts, the view raised): ``user`` is the adapter's user id or None, or left
        out to ask the lookup given to ``begin``. The ``client_user`` option, when set, wins
        over both. Signals sent later (a streamed body, the automatic request signal) use it,
        and nothing asks the adapter again."""
        web = self._web
        if web is None or self._user is not _ASK:
            return
        self._user = self._resolved_user(web, user)

    def _current_user(self, web: WebTelemetry) -> object:
        if self._user is not _ASK:
            return self._user
        return self._resolved_user(web, _ASK)

    def _resolved_user(self, web: WebTelemetry, user: object) -> object:
        """The one place the ``client_user`` option overrides the adapter's user."""
        override = web.settings.client_user
        try:
            if override is not None:
                return _not_awaitable(override(_native(self._native)), "client_user")
            if user is _ASK:
                lookup = self._user_lookup
                # The request as held: never a weak reference while a lookup is (that
                # happens only once the user is settled, _hold_request_weakly), and
                # _native()'s call would cost ~300 instructions on every request (valgrind).
                user = None if lookup is None else lookup(self._native)
                # Guarded: most requests are anonymous, and the check costs a call.
                return None if user is None else _not_awaitable(user, "the user loader")
        except Exception:
            throttled.exception(
                "user-lookup", "td_web: looking up the request's user failed; sent as anonymous"
            )
            return None
        return user

    @property
    def sample_rate(self) -> float | None:
        """The rate this request's session was sampled in at (``Sampling.rate``), or None
        when it is not sampled; work the request starts carries it on (a Celery task)."""
        return self._sample_rate

    @property
    def session_id(self) -> str | None:
        """The wire sessionID of this request (a one-way derivation of its session key)."""
        if self._web is None or self._session_key is None:
            return None
        return self._web.client.builder.session_id_for(self._session_key)

    @property
    def client_user_hash(self) -> str | None:
        """The wire clientUser this request's signals carry (already hashed), so that work
        started by the request (a Celery task) can count for the same visitor."""
        web = self._web
        if web is None:
            return None
        builder = web.client.builder
        user = self._current_user(web)
        return builder.client_user_hash(None if user is None else _text(user)) or (
            builder.anonymous_user(self.session_id or builder.process_session_id)
        )

    # -- for adapters ------------------------------------------------------------------------

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

    def set_cookie_header(
        self,
        app_set_cookies: Iterable[str] = (),
        cache_control: str | None = None,
        shared_cache: bool = False,
    ) -> str | None:
        """The ``Set-Cookie`` value for the response, or None when no cookie is due.

        ``app_set_cookies`` are the response's own ``Set-Cookie`` values: when the application
        set or deleted td_web's cookie itself (a "forget me" view), its word wins.

        A response a shared cache may store (``cache_control`` public or s-maxage, or
        ``shared_cache``: the adapter knows a cache stores it, Django's per-site cache) never
        gets the cookie: the cache would hand one visitor's session to everyone. A request that
        would have started a session with it gets the keyed address session instead.
        """
        cookie = self._cookie_header(
            tuple(app_set_cookies), cache_control, shared_cache or shared_cacheable(cache_control)
        )
        return None if cookie is None else cookie[3]

    def _cookie_header(
        self, app_set_cookies: tuple[str, ...], cache_control: str | None, shared: bool
    ) -> CookieParts | None:
        """The consent or session cookie due, or None."""
        web = self._web
        if web is None:
            return None
        if self._consent_change is not None:
            if shared:
                # The cache would replay this browser's choice to every visitor: an opt-in
                # would be consent nobody else gave.
                throttled.warning(
                    "consent-cached",
                    "td_web: opt_%s() on a response a shared cache may store (Cache-Control: "
                    "%s); the %s cookie was not set. Make that response private.",
                    "in" if self._consent_change == GRANTED else "out",
                    cache_control,
                    web.consent.cookie_name,
                )
                return None
            https = self._view is not None and self._view.scheme == "https"
            return _split(web.consent.cookie_header(self._consent_change, https))
        cookie = self._session_cookie
        if cookie is None or (not self._tracked and not self._sampled_out):
            return None
        # Guarded: most responses set no cookie, and the generator alone costs ~0.3 µs.
        if app_set_cookies:
            prefix = web.sessions.cookie_name + "="
            if any(value.lstrip().startswith(prefix) for value in app_set_cookies):
                return None
        if shared:
            if self._new_session:
                view = self._view
                assert view is not None
                self._session_key, self._new_session = web.sessions.address_session(
                    view.client_addr, view.user_agent
                )
                self._session_cookie = None
            return None
        return cookie

    def response_cookies(
        self,
        app_set_cookies: Iterable[str] = (),
        cache_control: str | None = None,
        shared_cache: bool = False,
    ) -> list[str]:
        """Every ``Set-Cookie`` value td_web adds to the response: the session (or consent)
        cookie of :meth:`set_cookie_header` and the visitor cookie. A response a shared cache
        may store gets no visitor cookie either: the cache would replay one visitor's counts
        to everyone. An opt-out (:meth:`opt_out`) also deletes the session and visitor
        cookies."""
        app_set_cookies = tuple(app_set_cookies) if app_set_cookies else ()
        shared = shared_cache or (cache_control is not None and shared_cacheable(cache_control))
        session = self._cookie_header(app_set_cookies, cache_control, shared)
        cookies = [] if session is None else [session[3]]
        web = self._web
        # Guarded, here and in response_cookie_parts: the usual response has nothing more.
        if web is not None and (shared or web.visitors is not None or self._consent_change):
            cookies.extend(self._more_cookies(web, session is not None, app_set_cookies, shared))
        return cookies

    def _more_cookies(
        self, web: WebTelemetry, session: bool, app_set_cookies: tuple[str, ...], shared: bool
    ) -> list[str]:
        """The response's cookies after the session (or consent) one: the deleted session and
        visitor cookies of an opt-out, the visitor cookie."""
        cookies = []
        if session and self._consent_change == DENIED:
            cookies.extend(web.consent.forget_headers(app_set_cookies))
        if shared:
            # Without the cookie the next request is "new" again: counting this visit would
            # count one visitor as a new one on every cached page.
            self._visit_refused = True
        elif web.visitors is not None:
            visitor = self.visitor_cookie_header(app_set_cookies)
            if visitor is not None:
                cookies.append(visitor)
        return cookies

    def response_cookie_parts(
        self,
        app_set_cookies: Iterable[str] = (),
        cache_control: str | None = None,
        shared_cache: bool = False,
    ) -> list[CookieParts]:
        """:meth:`response_cookies`, each as ``(name, value, attributes, header)``
        (``header`` is ``name=value`` followed by ``attributes``, which start with ``"; "``),
        for an adapter that sets cookies one by one (Django's ``response.cookies``). td_web's
        session cookie, on most responses, comes from the parts it was made of, its
        ``attributes`` one string per scheme (splitting its header again cost Django's
        adapter ~2,600 instructions per request, valgrind); any other cookie is split."""
        app_set_cookies = tuple(app_set_cookies) if app_set_cookies else ()
        shared = shared_cache or (cache_control is not None and shared_cacheable(cache_control))
        session = self._cookie_header(app_set_cookies, cache_control, shared)
        parts = [] if session is None else [session]
        web = self._web
        if web is not None and (shared or web.visitors is not None or self._consent_change):
            more = self._more_cookies(web, session is not None, app_set_cookies, shared)
            parts.extend(_split(header) for header in more)
        return parts

    def visitor_cookie_header(self, app_set_cookies: Iterable[str] = ()) -> str | None:
        """The visitor cookie's ``Set-Cookie`` value (``visitor_cookie=True``), or None."""
        visit = self._visitor()
        if visit is None:
            return None
        prefix = visit.cookie_header.partition("=")[0] + "="
        if any(value.lstrip().startswith(prefix) for value in app_set_cookies):
            return None
        return visit.cookie_header

    def _visitor(self) -> Visit | None:
        """This request's visit, counted once; None when no visitor cookie is due."""
        if self._visit is not None:
            return self._visit
        web = self._web
        if web is None or web.visitors is None or not self._tracked or self._session_key is None:
            return None
        if self._visit_refused:
            return None
        view = self._view
        assert view is not None
        if view.gpc is not None and view.gpc.strip() == "1":
            return None  # a long-lived marker is never set against a Global Privacy Control
        try:
            self._visit = web.visitors.visit(
                view.cookies, self._new_session, view.scheme == "https"
            )
        except Exception:
            logger.exception("td_web: reading or writing the visitor cookie failed")
        return self._visit

    def finish(
        self,
        status: int | None,
        content_type: str | None = None,
        route: str | None = None,
        *,
        user: object = _ASK,
        error: BaseException | None = None,
    ) -> None:
        """Queue this request's automatic signals; only the first call counts.

        ``user``: the adapter's user id (or None), resolved while its request was alive;
        left out when the adapter settled it already (``settle_user``) or the lookup given to
        ``begin`` still works. ``error``: the exception the view raised (reported as a 500).
        """
        if self._finished:
            return
        self._finished = True
        web = self._web
        if web is None:
            # Sends nothing (disabled, Sec-GPC, opted out): let go of the request now, which
            # holds this helper (the cycle explained below).
            self._native = self._user_lookup = None
            return
        if error is not None:
            self.record_exception(error)
        try:
            if self._tracked:
                if self._user is _ASK:  # settle_user(user), without its call
                    self._user = self._resolved_user(web, user)
                self._record(web, status, content_type, route)
                if self._properties is not False or web.make_properties is None:
                    # The user is settled and the properties evaluated: nothing asks the
                    # adapter's request again. Letting go of it (and of the lookup bound to
                    # it) breaks the cycle request -> helper -> request (request.telemetry,
                    # scope["state"]), which left every request to the cyclic garbage
                    # collector (bench: 52 collections per 5,000 Starlette requests, bare 0).
                    self._native = self._user_lookup = None
            elif self._silenced is not None:  # sampled out, opted out here: sends nothing
                self._native = self._user_lookup = None
            else:
                self._hold_request_weakly(web)
        finally:
            if self._in_flight:  # after the record is queued: a retired client closes now
                self._in_flight = False
                web.request_left()

    def _hold_request_weakly(self, web: WebTelemetry) -> None:
        """An excluded request (a static file, ``exclude_paths``) sends nothing by itself,
        but its view may still send a custom signal, even after finish (a background task),
        which asks for the user and the properties. Held strongly, the request and the user
        lookup bound to it kept the cycle request -> helper -> request (request.telemetry,
        scope["state"]) alive until the cyclic garbage collector ran, 10,000 objects per
        1,000 excluded requests. So the adapter's lookup is asked now (it reads a user the
        request has loaded already, as at a tracked request's finish) and let go of, and the
        request is held weakly; except while a user callable is promised the request (a
        callable ``default_payload`` not yet called, a ``client_user`` not yet asked): that
        one stays held, or the callable would be given td_web's view or None in its place."""
        if self._user is _ASK and web.settings.client_user is None:
            # (A later signal, the request gone, would otherwise go out as anonymous.)
            self._user = self._resolved_user(web, _ASK)
        if self._user is not _ASK or web.settings.client_user is not None:
            self._user_lookup = None  # nothing asks it any more
        native = self._native
        promised = (web.make_properties is not None and self._properties is False) or (
            web.settings.client_user is not None and self._user is _ASK
        )
        if native is not None and not promised:
            # An object that takes no weak reference stays held as it was.
            with contextlib.suppress(TypeError):
                self._native = weakref.ref(native)

    def _record(
        self, web: WebTelemetry, status: int | None, content_type: str | None, route: str | None
    ) -> None:
        try:
            duration = time.perf_counter() - self._start
            view = self._view
            assert view is not None
            if self._error is not None and (status is None or status < 500):
                status = 500
            route = route or self.route
            excluded = web.response_filter.active and web.response_filter.excludes(
                status or 500, route
            )
            if excluded and not (self._new_session and web.settings.session_started_signal):
                # A first visit still counts: its cookie is set, so it is never first again.
                visit = self._visitor()
                if visit is None or not visit.first_visit:
                    return
            page_view = (
                status is not None
                and 200 <= status < 300
                and view.method == "GET"
                and content_type is not None
                and content_type.startswith(_HTML_TYPES)
            )
            user = self._user
            error = self._error
            visit = None if web.visitors is None else self._visitor()
            # Only strings go on the queue: the user object and the exception (with its
            # traceback and every frame's locals) would be held until the sender runs, and
            # their __str__ would run on the sender's thread.
            web.client.enqueue(
                RequestSignals(
                    web,
                    view.for_queue(web.queue_keeps_address, web.queue_keeps_click_ids),
                    status or 500,
                    route,
                    duration,
                    page_view,
                    None if user is None else _text(user),
                    self._session_key,
                    self._new_session,
                    None if error is None else _qualified_name(type(error)),
                    _message(error)[:_MAX_MESSAGE_LENGTH]
                    if error is not None and web.settings.send_error_messages
                    else None,
                    self._extra_payload(),
                    excluded,
                    visit,
                )
            )
            self._error = None
        except Exception:
            logger.exception("td_web: recording the request failed")


def _split(header: str) -> CookieParts:
    """A ``Set-Cookie`` value as ``response_cookie_parts`` hands it over."""
    name, _, rest = header.partition("=")
    value = rest.partition(";")[0]
    return (name, value, rest[len(value) :], header)


def _native(held: Any) -> Any:
    """The adapter's request as the helper holds it (``Telemetry._native``): itself, or,
    held weakly (``_hold_request_weakly``), itself while alive and None once it is gone."""
    return held() if type(held) is weakref.ref else held


def _merged_extra(
    properties: dict[str, Any] | None, sample_rate: float | None
) -> dict[str, Any] | None:
    if sample_rate is None:
        return properties
    rate = repr(sample_rate)
    # First: a default payload of too many keys loses its last ones, never the rate.
    merged = {SAMPLE_RATE_KEY: rate, **(properties or {})}
    merged[SAMPLE_RATE_KEY] = rate
    return merged


def _qualified_name(cls: type) -> str:
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<unprintable message>"


def _not_awaitable(value: object, source: str) -> object:
    """An ``async def`` user callable returns a coroutine, not a user: it is refused at
    start-up, and a plain function that returns one anyway is caught here."""
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()  # no "coroutine was never awaited" warning on top of ours
        throttled.warning(
            "awaitable-user",
            "td_web: %s returned an awaitable, not a user id; td_web cannot await it on the "
            "request's path: sent as anonymous. Return the id itself.",
            source,
        )
        return None
    return value


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        throttled.exception(
            "user-text", "td_web: the user identifier could not be turned into a string"
        )
        return ""


_NULL = Telemetry(None, None, None, None, False, False)


def current() -> Telemetry:
    """The helper of the request being handled; outside a request, one that sends nothing
    (and says so in a throttled warning)."""
    return _current.get() or _NULL
