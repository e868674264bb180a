"""Request-telemetry options, shared by every adapter under the same names.

Adapters hand over one flat mapping (Django ``TELEMETRYDECK`` keys lower-cased, Flask
``TELEMETRYDECK_*`` config keys without the prefix, ASGI keyword arguments); the client's
options go to :class:`td_web.TelemetryDeck`, these to :class:`WebSettings`.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .._config import OPTION_NAMES as CLIENT_OPTION_NAMES
from .._config import ConfigurationError, parse_bool, sync_callable
from .geo import country_header_names, geoip_database_path
from .proxies import TrustedProxies
from .response_filter import parse_statuses, route_key, route_templates
from .sampling import parse_rate

#: Paths never tracked by default (prefix match).
DEFAULT_EXCLUDED_PREFIXES = (
    "/static/",
    "/media/",
    "/favicon.ico",
    "/robots.txt",
    "/.well-known/",
    "/apple-touch-icon",
)
#: Health-check paths (exact match, with or without a trailing slash).
DEFAULT_HEALTH_PATHS = frozenset(
    {
        "/health",
        "/healthz",
        "/healthcheck",
        "/health-check",
        "/_health",
        "/ready",
        "/readyz",
        "/live",
        "/livez",
        "/ping",
        "/up",
    }
)
DEFAULT_EXCLUDED_METHODS = frozenset({"OPTIONS", "HEAD"})
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class WebSettings:
    #: Signal types of the automatic signal; None switches that kind off.
    page_view_signal: str | None = "pageView"
    request_signal: str | None = "HTTP.request"
    session_started_signal: str | None = "TelemetryDeck.Session.started"
    error_signal: str | None = "TelemetryDeck.Error.occurred"
    #: Send exception messages with the error signal (they may hold personal data).
    send_error_messages: bool = False
    #: td_web's own session cookie.
    session_cookie_name: str = "td_session"
    session_cookie_max_age: int = 30 * 60
    session_cookie_path: str = "/"
    session_cookie_domain: str | None = None
    session_cookie_samesite: str = "Lax"
    session_cookie_httponly: bool = True
    #: None: Secure on HTTPS requests only.
    session_cookie_secure: bool | None = None
    #: Derive sessions from an existing cookie (e.g. Django's ``sessionid``) instead.
    session_from_cookie: str | None = None
    #: Set no cookie; sessions from a daily-rotating keyed hash of address and user agent.
    cookieless: bool = False
    #: Send nothing for requests carrying ``Sec-GPC: 1``.
    respect_gpc: bool = False
    #: Extra exclusions: path prefixes, regular expressions (searched in the path), and a
    #: callable that sees the framework's request and returns True to skip it.
    exclude_paths: tuple[str, ...] = ()
    exclude_patterns: tuple[re.Pattern[str], ...] = ()
    exclude: Callable[[Any], bool] | None = None
    #: Paths to track although a default exclusion matches them (prefix match).
    include_paths: tuple[str, ...] = ()
    exclude_methods: frozenset[str] = DEFAULT_EXCLUDED_METHODS
    track_bots: bool = False
    #: Where SIGTERM is left at its default, deliver queued signals first, then let SIGTERM
    #: end the process exactly as before (``td_web._shutdown``).
    handle_sigterm: bool = True
    #: Overrides the adapter's user lookup: called with the framework's request, returns the
    #: user identifier (hashed before sending) or None for anonymous.
    client_user: Callable[[Any], object] | None = None
    #: Users in control (parsed in ``sampling`` and ``response_filter``): see the README.
    sample_rate: float = 1.0
    sampler: Callable[[Any], object] | None = None
    consent_required: bool = False
    consent_cookie_name: str = "td_consent"
    respect_dnt: bool = False
    exclude_status: frozenset[int] = frozenset()
    exclude_routes: frozenset[str] = frozenset()
    trusted_proxies: TrustedProxies | None = None
    #: Replace path segments that look like e-mail addresses, UUIDs, card numbers or tokens
    #: by a placeholder (``redaction``); matrix parameters are dropped whatever this says.
    redact_paths: bool = True
    #: More regular expressions: a path segment in which one matches becomes ``{redacted}``.
    redact_patterns: tuple[re.Pattern[str], ...] = ()
    # -- dashboard keys (see README "Dashboard keys") --
    #: Browser, system and device keys parsed from the User-Agent on the sender thread.
    device_keys: bool = True
    #: Edge headers holding the client's country, trusted in this order (``CF-IPCountry``,
    #: ``CloudFront-Viewer-Country``, ``X-Vercel-IP-Country`` or any name): only those the app
    #: really sits behind, since a client can send any of them itself.
    country_headers: tuple[str, ...] = ()
    #: A MaxMind-format (.mmdb) country or city database, asked after the headers.
    geoip_database: str | None = None
    #: Send the per-click ad identifiers ``GCLID`` and ``MSCLKID`` from the query string.
    send_click_ids: bool = False
    #: A signed first-party cookie with visit counts (no identifier) for the new and
    #: returning visitor keys; never set in cookieless mode or under ``respect_gpc``.
    visitor_cookie: bool = False
    visitor_cookie_name: str = "td_visitor"
    visitor_cookie_max_age: int = 400 * 86400


WEB_OPTION_NAMES = frozenset(f.name for f in fields(WebSettings))
ALL_OPTION_NAMES = WEB_OPTION_NAMES | CLIENT_OPTION_NAMES | {"client"}


def split_options(
    options: Mapping[str, Any], source: str = "options"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(client options, web options); unknown names are a ConfigurationError naming them."""
    unknown = sorted(set(options) - ALL_OPTION_NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown td_web setting(s) in {source}: {', '.join(unknown)}. "
            f"Known: {', '.join(sorted(ALL_OPTION_NAMES))}"
        )
    client = {k: v for k, v in options.items() if k in CLIENT_OPTION_NAMES or k == "client"}
    web = {k: v for k, v in options.items() if k in WEB_OPTION_NAMES}
    return client, web


def build_web_settings(options: Mapping[str, Any]) -> WebSettings:
    values: dict[str, Any] = {}
    for name, value in options.items():
        if value is None and name not in _SIGNAL_TYPES:
            continue  # None: the default (a signal type's None switches that signal off)
        values[name] = OPTION_PARSERS[name](value, name)
    settings = WebSettings(**values)
    _refuse_shared_cookie_names(settings)
    return settings


def _refuse_shared_cookie_names(settings: WebSettings) -> None:
    """The consent, visitor and session cookies must be different cookies: a session read
    from the consent cookie would put everyone who consented in one session, a consent read
    from the session cookie would find junk and track nobody."""
    in_use = [("consent_cookie_name", settings.consent_cookie_name)]
    if settings.session_from_cookie is not None:
        in_use.append(("session_from_cookie", settings.session_from_cookie))
    elif not settings.cookieless:
        in_use.append(("session_cookie_name", settings.session_cookie_name))
    if settings.visitor_cookie:
        in_use.append(("visitor_cookie_name", settings.visitor_cookie_name))
    seen: dict[str, str] = {}
    for setting, cookie in in_use:
        other = seen.setdefault(cookie, setting)
        if other != setting:
            raise ConfigurationError(
                f"{other} and {setting} are both {cookie!r}: td_web needs a cookie of its own "
                "for each; pick another name for one of them"
            )


def _signal_type(value: Any, name: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigurationError(f"{name} must be a signal type or None, got {value!r}")
    return value


def _optional_bool(value: Any, name: str) -> bool | None:
    return None if value is None else parse_bool(value, name)


def _seconds(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


def _samesite(value: Any, name: str) -> str:
    canonical = _SAMESITE.get(str(value).lower())
    if canonical is None:
        raise ConfigurationError(f"{name} must be Lax, Strict or None, got {value!r}")
    return canonical


def _cookie_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _COOKIE_NAME.fullmatch(value):
        raise ConfigurationError(f"{name} must be a valid cookie name, got {value!r}")
    return value


def _cookie_path(value: Any, name: str) -> str:
    # Written into Set-Cookie as it is: a ";" would add attributes of its own.
    if not isinstance(value, str) or not re.fullmatch(r"/[\x21-\x3a\x3c-\x7e]*", value):
        raise ConfigurationError(f"{name} must be a URL path such as '/', got {value!r}")
    return value


def _cookie_domain(value: Any, name: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*)", value):
        raise ConfigurationError(f"{name} must be a domain such as 'example.com', got {value!r}")
    return value


def _paths(value: Any, name: str) -> tuple[str, ...]:
    paths = _strings(name, value)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigurationError(f"{name} entries must start with '/', got {path!r}")
    return tuple(paths)


def _patterns(value: Any, name: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in _items(name, value):
        if isinstance(pattern, re.Pattern):
            compiled.append(pattern)
            continue
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ConfigurationError(f"{name}: {pattern!r} is not a valid regex ({exc})") from exc
    return tuple(compiled)


def _methods(value: Any, name: str) -> frozenset[str]:
    return frozenset(method.upper() for method in _strings(name, value))


def _routes(value: Any, name: str) -> frozenset[str]:
    return frozenset(route_key(route) for route in route_templates(value, name))


def _plain_callable(value: Any, name: str) -> Any:
    return require_sync_callable(name, value)


def _checked_callable(value: Any, name: str) -> Any:
    return sync_callable(value, name)


_SIGNAL_TYPES = frozenset(
    {"page_view_signal", "request_signal", "session_started_signal", "error_signal"}
)

#: How each option of :class:`WebSettings` is read and checked, one row per field (a test
#: keeps the two in step, so no option escapes validation). Each parser gets the value and the
#: option's name, and raises a ConfigurationError naming both.
OPTION_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    **dict.fromkeys(_SIGNAL_TYPES, _signal_type),
    **dict.fromkeys(
        (
            "send_error_messages",
            "session_cookie_httponly",
            "cookieless",
            "respect_gpc",
            "track_bots",
            "handle_sigterm",
            "redact_paths",
            "device_keys",
            "send_click_ids",
            "visitor_cookie",
            "consent_required",
            "respect_dnt",
        ),
        parse_bool,
    ),
    "session_cookie_secure": _optional_bool,
    **dict.fromkeys(("session_cookie_max_age", "visitor_cookie_max_age"), _seconds),
    "session_cookie_samesite": _samesite,
    **dict.fromkeys(
        (
            "session_cookie_name",
            "session_from_cookie",
            "visitor_cookie_name",
            "consent_cookie_name",
        ),
        _cookie_name,
    ),
    "session_cookie_path": _cookie_path,
    "session_cookie_domain": _cookie_domain,
    **dict.fromkeys(("exclude_paths", "include_paths"), _paths),
    **dict.fromkeys(("exclude_patterns", "redact_patterns"), _patterns),
    "exclude_methods": _methods,
    "exclude": _plain_callable,
    "client_user": _plain_callable,
    "sampler": _checked_callable,
    "sample_rate": parse_rate,
    "exclude_status": parse_statuses,
    "exclude_routes": _routes,
    "trusted_proxies": TrustedProxies.parse,
    "country_headers": lambda value, name: country_header_names(value),
    "geoip_database": lambda value, name: geoip_database_path(value),
}


def require_sync_callable(name: str, value: Any) -> Any:
    """A user-supplied callable td_web calls on the request's path: it must be a plain one.
    An ``async def`` function would return a coroutine that nobody awaits (a random user per
    request, an exclusion that always holds), so it is refused at start-up."""
    if not callable(value):
        raise ConfigurationError(f"{name} must be a callable, got {type(value).__name__}")
    target = value
    while isinstance(target, functools.partial):
        target = target.func
    if (
        inspect.iscoroutinefunction(target)
        or inspect.isasyncgenfunction(target)
        or inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004
    ):
        raise ConfigurationError(
            f"{name} must be a plain function, not async ({_callable_name(value)} is "
            "`async def`): td_web calls it on the request's path and cannot await it. "
            "Return the value directly (for a user, read it from the request)."
        )
    return value


def _callable_name(value: Any) -> str:
    return str(getattr(value, "__qualname__", None) or type(value).__qualname__)


def _items(name: str, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{name} must be a list, got {value!r}")
    return list(value)


def _strings(name: str, value: Any) -> list[str]:
    items = _items(name, value)
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"{name} entries must be strings, got {item!r}")
    return items
