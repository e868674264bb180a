"""Request telemetry written once for every adapter, against a framework-neutral request view.

An adapter builds a :class:`RequestView` from its request (a handful of strings), calls
:meth:`WebTelemetry.begin`, attaches the returned :class:`Telemetry` to the request, runs the
view, then calls :meth:`Telemetry.finish` with the status, content type and route template and
adds :meth:`Telemetry.response_cookies` to the response.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._client import TelemetryDeck
from .._log import logger
from .._shutdown import exit_cleanly_on_sigterm
from .consent import ConsentPolicy, opt_in, opt_out
from .dashboard import DashboardKeys
from .exclusions import Exclusions
from .payload import campaign_query
from .payload_json import PayloadJSON
from .redaction import PathRedactor
from .response_filter import ResponseFilter
from .routes import normalize_route
from .sampling import SessionSampler
from .sessions import SessionPolicy, derivation_secret
from .settings import WebSettings, build_web_settings, handed_over_client, split_options
from .telemetry import Telemetry, current
from .visitors import VisitorPolicy

__all__ = [
    "RequestView",
    "Telemetry",
    "WebSettings",
    "WebTelemetry",
    "current",
    "normalize_route",
    "opt_in",
    "opt_out",
]


class RequestView:
    """The few request facts td_web needs, as plain strings, whatever the framework.

    ``path`` is the full path the client asked for (mount prefixes and script names included),
    decoded; ``query_string`` the raw query without ``?``; ``cookies`` a parsed mapping or the
    raw ``Cookie`` header. ``forwarded*`` are the raw ``Forwarded`` and ``X-Forwarded-For``,
    ``-Host``, ``-Proto`` headers, read only through ``trusted_proxies``.
    """

    __slots__ = (
        "accept_language",
        "client_addr",
        "cookies",
        "countries",
        "dnt",
        "forwarded",
        "forwarded_for",
        "forwarded_host",
        "forwarded_proto",
        "gpc",
        "host",
        "method",
        "path",
        "query_string",
        "queued_size",
        "referer",
        "scheme",
        "user_agent",
    )

    # Positional parameters, and the adapters pass them positionally: a type call with
    # sixteen keyword arguments costs 1-1.5 µs more per request (timeit, 3.11), a tenth of
    # the request path's budget.
    def __init__(
        self,
        method: str,
        scheme: str,
        host: str,
        path: str,
        query_string: str = "",
        user_agent: str | None = None,
        referer: str | None = None,
        accept_language: str | None = None,
        cookies: Mapping[str, str] | str | None = None,
        client_addr: str | None = None,
        gpc: str | None = None,
        dnt: str | None = None,
        forwarded: str | None = None,
        forwarded_for: str | None = None,
        forwarded_proto: str | None = None,
        forwarded_host: str | None = None,
    ) -> None:
        self.method = method
        self.scheme = scheme
        self.host = host
        self.path = path
        self.query_string = query_string
        self.user_agent = user_agent
        self.referer = referer
        self.accept_language = accept_language
        self.cookies = cookies
        self.client_addr = client_addr
        self.gpc = gpc
        self.dnt = dnt
        self.forwarded = forwarded
        self.forwarded_for = forwarded_for
        self.forwarded_proto = forwarded_proto
        self.forwarded_host = forwarded_host
        #: The values of the trusted ``country_headers``, in their order (adapters fill it).
        self.countries: tuple[str | None, ...] = ()
        #: ``approx_size`` once ``for_queue`` has stripped the view (and counted it).
        self.queued_size: int | None = None

    @classmethod
    def from_meta(
        cls,
        meta: Mapping[str, Any],
        method: str,
        scheme: str,
        host: str,
        path: str,
        forwarding: bool = True,
    ) -> RequestView:
        """The view from a WSGI environ or Django's ``META`` (CGI-style header keys), given
        what the adapter resolves its own way; the raw ``Cookie`` header is kept as it is.
        ``forwarding=False``: the forwarding headers are left out. Adapters go through
        :meth:`WebTelemetry.view_from_meta`, which decides that."""
        get = meta.get
        view = cls(
            method,
            scheme,
            host,
            path,
            get("QUERY_STRING", ""),
            get("HTTP_USER_AGENT"),
            get("HTTP_REFERER"),
            get("HTTP_ACCEPT_LANGUAGE"),
            get("HTTP_COOKIE"),
            get("REMOTE_ADDR"),
            get("HTTP_SEC_GPC"),
            get("HTTP_DNT"),
        )
        # Four dictionary look-ups a request without trusted proxies never needs (~1,000
        # instructions, valgrind).
        if forwarding:
            view.forwarded = get("HTTP_FORWARDED")
            view.forwarded_for = get("HTTP_X_FORWARDED_FOR")
            view.forwarded_proto = get("HTTP_X_FORWARDED_PROTO")
            view.forwarded_host = get("HTTP_X_FORWARDED_HOST")
        return view

    def for_queue(self, keep_address: bool = False, keep_click_ids: bool = False) -> RequestView:
        """Strip the view down to what the request's record keeps until the sender builds it
        (maybe after a long outage), in place, and return it: no cookies, no client address,
        no GPC header (the session and the opt-out were decided at ``begin``), only the
        campaign parameters of the query string, every other string bounded. Runs on the
        request's path, hence plain attribute work and no copy. ``keep_address``: the
        sender looks the address up in ``geoip_database`` (it is never sent);
        ``keep_click_ids``: ``send_click_ids`` sends them."""
        self.cookies = self.gpc = self.dnt = None
        if not keep_address:
            self.client_addr = None
        # The forwarding headers hold client addresses and were resolved at ``begin``.
        self.forwarded = self.forwarded_for = self.forwarded_proto = self.forwarded_host = None
        if self.query_string:
            self.query_string = campaign_query(self.query_string, keep_click_ids)
        limit = _QUEUED_FIELD_LENGTH
        size = self._text_size()
        # The usual request: all of them together within one field's limit, none to cut.
        if size > limit or _OTHER_FIELDS:
            self._cut_to(limit)
        if self.countries:
            # A country code is two letters; a header of kilobytes is junk (logged cut too).
            self.countries = tuple(
                value[:_QUEUED_COUNTRY_LENGTH] if value is not None else None
                for value in self.countries
            )
        # Counted now, while the lengths are at hand: the sender's queue asks at once.
        self.queued_size = (
            self._size()
            if self.countries or size > limit
            else size + len(self.query_string) + len(self.client_addr or "")
        )
        return self

    def _cut_to(self, limit: int) -> None:
        # Spelled out: a loop of getattr/setattr costs a microsecond more per request.
        if len(self.path) > limit:
            self.path = self.path[:limit]
        if len(self.host) > limit:
            self.host = self.host[:limit]
        if len(self.method) > limit:
            self.method = self.method[:limit]
        if len(self.scheme) > limit:
            self.scheme = self.scheme[:limit]
        if self.user_agent is not None and len(self.user_agent) > limit:
            self.user_agent = self.user_agent[:limit]
        if self.referer is not None and len(self.referer) > limit:
            self.referer = self.referer[:limit]
        if self.accept_language is not None and len(self.accept_language) > limit:
            self.accept_language = self.accept_language[:limit]
        for name in _OTHER_FIELDS:
            value = getattr(self, name)
            if type(value) is str and len(value) > limit:
                setattr(self, name, value[:limit])

    def approx_size(self) -> int:
        """The characters of text this view holds (an estimate of its bytes, cheap: it runs
        on the request's path, hence the fields spelled out rather than a loop over slots)."""
        size = self.queued_size
        return self._size() if size is None else size

    def _text_size(self) -> int:
        """The URL's and the kept headers' characters (those ``for_queue`` bounds)."""
        return (
            len(self.path)
            + len(self.host)
            + len(self.method)
            + len(self.scheme)
            + len(self.user_agent or "")
            + len(self.referer or "")
            + len(self.accept_language or "")
        )

    def _size(self) -> int:
        cookies = self.cookies
        return (
            self._text_size()
            + len(self.query_string)
            + len(self.client_addr or "")
            + (len(cookies) if type(cookies) is str else 0)
            # Guarded: a generator for the usual empty tuple costs half a microsecond.
            + (
                sum(len(country) for country in self.countries if country is not None)
                if self.countries
                else 0
            )
        )


#: A queued request's strings are cut to this (the payload's own limit: more would be cut).
_QUEUED_FIELD_LENGTH = 4096
#: A queued country header is cut to this: more than any code, as much as its warning shows.
_QUEUED_COUNTRY_LENGTH = 40
#: Fields added to the view after ``for_queue`` was written: bounded all the same.
_OTHER_FIELDS = tuple(
    set(RequestView.__slots__)
    - {"cookies", "client_addr", "gpc", "dnt", "query_string", "path", "host", "method"}
    - {"forwarded", "forwarded_for", "forwarded_proto", "forwarded_host", "countries"}
    - {"user_agent", "referer", "accept_language", "scheme", "queued_size"}
)


class WebTelemetry:
    """Per-application request telemetry: a client, the web settings, sessions, exclusions."""

    normalize_route = staticmethod(normalize_route)

    def __init__(
        self,
        client: TelemetryDeck,
        settings: WebSettings | None = None,
        excluded_prefixes: Iterable[str] = (),
        framework_secret: str | bytes | None = None,
    ) -> None:
        """``framework_secret``: the framework's own secret (Django's and Flask's
        ``SECRET_KEY``), from which session derivations are keyed when there is no salt."""
        self.client = client
        self.settings = settings or WebSettings()
        #: One entry per request begun here and not finished: ``append`` and ``pop`` are
        #: atomic, so a request counts itself in and out without taking a lock (two lock
        #: round trips per request before); only ``retire`` and the last request after it
        #: take ``_retire_lock``. The timeout to close the client with once there are none.
        self._in_flight: list[None] = []
        self._retire_timeout: float | None = None
        self._retire_lock = threading.Lock()
        self._retired = False
        secret = derivation_secret(client.config.salt, framework_secret)
        if not client.enabled and secret is None:
            secret = b"disabled"  # sends nothing: cookieless mode needs no secret then
        self.sessions = SessionPolicy(self.settings, secret)
        self.exclusions = Exclusions(self.settings, excluded_prefixes)
        self.consent = ConsentPolicy(self.settings)
        self.sampling = SessionSampler(self.settings)
        self.response_filter = ResponseFilter(self.settings)
        make_properties = client.config.default_payload
        #: A callable default_payload, evaluated per request (a mapping is the builder's).
        self.make_properties = make_properties if callable(make_properties) else None
        self._proxies = self.settings.trusted_proxies
        #: Whether the adapters read the forwarding headers (``Forwarded``, ``X-Forwarded-*``)
        #: into the view: only ``trusted_proxies`` reads them, so without it they are neither
        #: read nor queued (~1,000 instructions per request on a WSGI environ, valgrind).
        self.reads_forwarding = self._proxies is not None
        self._respect_dnt = self.settings.respect_dnt
        self.redactor = PathRedactor(self.settings.redact_paths, self.settings.redact_patterns)
        #: The sender's parts of request payloads, kept per route, referer, query, language.
        self.payload_json = PayloadJSON(
            self.redactor, self.normalize_route, self.settings.send_click_ids
        )
        #: What the sender's writer keeps this application's browsers under
        #: (``SignalJSON.keep``): a token, never the application itself, which the writer (one
        #: per configuration, shared by every client of it) would keep alive with its client.
        self.kept_key = object()
        self.dashboard = DashboardKeys(self.settings, self.exclusions)
        if client.enabled and self.dashboard.device is not None:
            self.dashboard.device.warm_up(background=client.sends_in_background)
        #: The ``country_headers`` to copy into :attr:`RequestView.countries` (adapters).
        self.geo = self.dashboard.geo
        self.visitors = VisitorPolicy.for_settings(self.settings, client.config.salt)
        #: What a queued request keeps for the sender beyond the default (``for_queue``).
        self.queue_keeps_address = self.settings.geoip_database is not None
        self.queue_keeps_click_ids = self.settings.send_click_ids
        # Read on every request; neither changes after construction.
        self._enabled = client.enabled
        self._respect_gpc = self.settings.respect_gpc
        if self.settings.handle_sigterm and client.enabled:
            exit_cleanly_on_sigterm()
        if client.enabled and secret is None and self.settings.session_from_cookie:
            # The session key then holds another cookie; keyed with a public constant, anyone
            # holding that cookie can tell which session ID it became.
            logger.warning(
                "td_web: session_from_cookie without a salt: session IDs can be traced back to "
                "the cookie they come from. Set a long random salt (TELEMETRYDECK_SALT)."
            )

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        fallbacks: Mapping[str, Any] | None = None,
        excluded_prefixes: Iterable[str] = (),
        source: str = "options",
        framework_secret: str | bytes | None = None,
    ) -> WebTelemetry:
        """From one flat mapping of client and web options (``client=`` reuses a client)."""
        client_options, web_options = split_options(options, source)
        client = handed_over_client(client_options)
        if client is None:
            client = TelemetryDeck.from_options(client_options, fallbacks)
        return cls(client, build_web_settings(web_options), excluded_prefixes, framework_secret)

    def view_from_meta(
        self, meta: Mapping[str, Any], method: str, scheme: str, host: str, path: str
    ) -> RequestView:
        """The request view from a WSGI environ or Django's ``META``
        (:meth:`RequestView.from_meta`), the forwarding headers read only when trusted
        (:attr:`reads_forwarding`), the trusted ``country_headers`` copied."""
        view = RequestView.from_meta(meta, method, scheme, host, path, self.reads_forwarding)
        country_keys = self.geo.environ_keys
        if country_keys:
            get = meta.get
            view.countries = tuple(get(key) for key in country_keys)
        return view

    def flush_at_shutdown(self) -> bool:
        """Deliver what the client holds within its ``shutdown_timeout``; never raises."""
        client = self.client
        try:
            if client.flush(client.config.shutdown_timeout):
                return True
            logger.warning(
                "td_web: not every signal was delivered within shutdown_timeout (%ss); "
                "raise shutdown_timeout or set spool_path",
                client.config.shutdown_timeout,
            )
        except Exception:
            logger.exception("td_web: delivering queued signals at shutdown failed")
        return False

    def retire(self, timeout: float) -> None:
        """This telemetry was replaced (a settings change): close its client once the requests
        that began with it have finished, so that nothing they still send is lost."""
        with self._retire_lock:
            self._retire_timeout = timeout
            idle = self._takes_retirement()
        if idle:
            self._close_retired(timeout)

    def request_left(self) -> None:
        self._in_flight.pop()
        # Read after the pop: a retire() that saw this request still in flight has set the
        # timeout by then, so one of the two closes the client.
        timeout = self._retire_timeout
        if timeout is None:
            return
        with self._retire_lock:
            last = self._takes_retirement()
        if last:
            # The last request of a replaced telemetry: the close (a flush) must not hold up
            # that request's thread.
            threading.Thread(
                target=self._close_retired, args=(timeout,), name="td_web-retire", daemon=True
            ).start()

    def _takes_retirement(self) -> bool:
        """Under ``_retire_lock``: True for the one caller that finds no request in flight
        after ``retire`` (that caller closes the client)."""
        if self._in_flight or self._retired:
            return False
        self._retired = True
        return True

    def _close_retired(self, timeout: float) -> None:
        try:
            self.client.close(timeout)
        except Exception:
            logger.exception("td_web: closing the replaced TelemetryDeck client failed")

    def begin(
        self,
        view: RequestView,
        native: Any = None,
        user_lookup: Callable[[Any], object] | None = None,
    ) -> Telemetry:
        """Start a request: decides whether it is tracked and which session it belongs to.

        ``user_lookup``, given ``native`` (the adapter's request), returns the adapter's user
        id (or None) while the request is alive: custom signals sent from the view ask it; the
        adapter settles the user before its request context ends (``Telemetry.settle_user`` or
        ``finish(user=...)``). One function for every request, not a callable made per request
        (a ``partial`` bound to the request: ~1,300 instructions per request, valgrind).
        """
        if not self._enabled:
            return Telemetry.inert("td_web is disabled (enabled=False)", view, native)
        if self._proxies is not None:
            self._proxies.apply(view)
        if self._respect_gpc and view.gpc is not None and view.gpc.strip() == "1":
            return Telemetry.inert("the request opted out with Sec-GPC: 1", view, native)
        if self._respect_dnt and view.dnt is not None and view.dnt.strip() == "1":
            return Telemetry.inert("the request opted out with DNT: 1", view, native)
        consent = self.consent
        cookies = view.cookies
        # Asked only when it can refuse: consent required, or its cookie maybe present.
        refusal = (
            consent.refusal(cookies)
            if consent.required or (cookies and consent.cookie_name in cookies)
            else None
        )
        if refusal is not None:
            # Silent, but it keeps the web telemetry: the view may record consent (opt_in).
            return Telemetry(self, view, native, None, False, False, user_lookup).silence(refusal)
        tracked = not self.exclusions.excludes(view.method, view.path, view.user_agent, native)
        key: str | None
        cookie = None
        if tracked:
            sessions = self.sessions
            key, new, own = sessions.resolve(view.cookies, view.client_addr, view.user_agent)
            if own:  # decided once here: only opt_in/opt_out or the response can change it
                cookie = sessions.set_cookie(key, view.scheme == "https")
        else:
            # Excluded requests keep an existing session for custom signals but start none.
            key, new = self.sessions.existing(view.cookies), False
        telemetry = Telemetry(self, view, native, key, new, tracked, user_lookup, cookie)
        if self.sampling.active and key is not None:
            telemetry.apply_sampling(self.sampling.rate_for(view))
        self._in_flight.append(None)
        telemetry._in_flight = True
        return telemetry
