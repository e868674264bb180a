"""Request telemetry written once for every adapter, against a framework-neutral request view.

An adapter builds a :class:`RequestView` from its request (a handful of strings), calls
:meth:`WebTelemetry.begin`, attaches the returned :class:`Telemetry` to the request, runs the
view, then calls :meth:`Telemetry.finish` with the status, content type and route template and
adds :meth:`Telemetry.set_cookie_header` to the response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._client import TelemetryDeck
from .._config import ConfigurationError
from .._log import logger
from .._shutdown import exit_cleanly_on_sigterm
from .dashboard import DashboardKeys
from .exclusions import Exclusions
from .routes import normalize_route
from .sessions import SessionPolicy
from .settings import WebSettings, build_web_settings, split_options
from .telemetry import Telemetry, current
from .visitors import VisitorPolicy

__all__ = [
    "RequestView",
    "Telemetry",
    "WebSettings",
    "WebTelemetry",
    "current",
    "normalize_route",
]


class RequestView:
    """The few request facts td_web needs, as plain strings, whatever the framework.

    ``path`` is the full path the client asked for (mount prefixes and script names included),
    decoded; ``query_string`` the raw query without ``?``; ``cookies`` a parsed mapping or the
    raw ``Cookie`` header.
    """

    __slots__ = (
        "accept_language",
        "client_addr",
        "cookies",
        "countries",
        "gpc",
        "host",
        "method",
        "path",
        "query_string",
        "referer",
        "scheme",
        "user_agent",
    )

    def __init__(
        self,
        *,
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
        #: The values of the trusted ``country_headers``, in their order (adapters fill it).
        self.countries: tuple[str | None, ...] = ()


class WebTelemetry:
    """Per-application request telemetry: a client, the web settings, sessions, exclusions."""

    normalize_route = staticmethod(normalize_route)

    def __init__(
        self,
        client: TelemetryDeck,
        settings: WebSettings | None = None,
        excluded_prefixes: Iterable[str] = (),
    ) -> None:
        self.client = client
        self.settings = settings or WebSettings()
        self.sessions = SessionPolicy(self.settings)
        self.exclusions = Exclusions(self.settings, excluded_prefixes)
        self.dashboard = DashboardKeys(self.settings, self.exclusions)
        if client.enabled and self.dashboard.device is not None:
            self.dashboard.device.warm_up()
        #: The ``country_headers`` to copy into :attr:`RequestView.countries` (adapters).
        self.geo = self.dashboard.geo
        self.visitors = VisitorPolicy.for_settings(self.settings, client.config.salt)
        # Read on every request; neither changes after construction.
        self._enabled = client.enabled
        self._respect_gpc = self.settings.respect_gpc
        if self.settings.handle_sigterm and client.enabled:
            exit_cleanly_on_sigterm()
        if (
            client.enabled
            and not client.config.salt
            and (self.settings.cookieless or self.settings.session_from_cookie)
        ):
            # The session key then holds the client's address (cookieless) or another
            # cookie; keyed with a public constant, a session ID could be brute-forced back.
            logger.warning(
                "td_web: %s without a salt: session IDs can be traced back to the %s. "
                "Set a long random salt (TELEMETRYDECK_SALT).",
                "cookieless=True" if self.settings.cookieless else "session_from_cookie",
                "client's IP address" if self.settings.cookieless else "cookie they come from",
            )

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        fallbacks: Mapping[str, Any] | None = None,
        excluded_prefixes: Iterable[str] = (),
        source: str = "options",
    ) -> WebTelemetry:
        """From one flat mapping of client and web options (``client=`` reuses a client)."""
        client_options, web_options = split_options(options, source)
        client = client_options.pop("client", None)
        if client is None:
            client = TelemetryDeck.from_options(client_options, fallbacks)
        elif not isinstance(client, TelemetryDeck):
            raise ConfigurationError(
                f"client must be a td_web.TelemetryDeck, got {type(client).__name__}"
            )
        elif client_options:
            raise ConfigurationError(
                "pass either client= or client options "
                f"({', '.join(sorted(client_options))}), not both"
            )
        return cls(client, build_web_settings(web_options), excluded_prefixes)

    def flush_at_shutdown(self) -> bool:
        """Deliver what the client holds within its ``shutdown_timeout``; never raises."""
        client = self.client
        try:
            if client.flush(client.config.shutdown_timeout):
                return True
            logger.warning(
                "td_web: not every signal was delivered within shutdown_timeout (%ss)",
                client.config.shutdown_timeout,
            )
        except Exception:
            logger.exception("td_web: delivering queued signals at shutdown failed")
        return False

    def begin(self, view: RequestView, native: Any = None) -> Telemetry:
        """Start a request: decides whether it is tracked and which session it belongs to."""
        if not self._enabled:
            return Telemetry.inert("td_web is disabled (enabled=False)", view, native)
        if self._respect_gpc and view.gpc is not None and view.gpc.strip() == "1":
            return Telemetry.inert("the request opted out with Sec-GPC: 1", view, native)
        tracked = not self.exclusions.excludes(view.method, view.path, view.user_agent, native)
        key: str | None
        if tracked:
            key, new = self.sessions.resolve(view.cookies, view.client_addr, view.user_agent)
        else:
            # Excluded requests keep an existing session for custom signals but start none.
            key, new = self.sessions.existing(view.cookies), False
        return Telemetry(self, view, native, key, new, tracked)
