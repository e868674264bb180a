"""Request-telemetry options, shared by every adapter under the same names.

Adapters hand over one flat mapping (Django ``TELEMETRYDECK`` keys lower-cased, Flask
``TELEMETRYDECK_*`` config keys without the prefix, ASGI keyword arguments); the client's
options go to :class:`td_web.TelemetryDeck`, these to :class:`WebSettings`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._client import TelemetryDeck
from .._config import ConfigurationError
from .._options import (
    ADAPTER_NAMES,
    CLIENT_HAND_OFF,
    CLIENT_OPTION_NAMES,
    WEB,
    WEB_OPTION_NAMES,
    default,
    parse_options,
    unknown_names_error,
)
from .proxies import TrustedProxies

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


@dataclass(frozen=True)
class WebSettings:
    """Request telemetry's options, resolved. Each field's default, parser and meaning are its
    row in :mod:`td_web._options`."""

    page_view_signal: str | None = default("page_view_signal")
    request_signal: str | None = default("request_signal")
    session_started_signal: str | None = default("session_started_signal")
    error_signal: str | None = default("error_signal")
    send_error_messages: bool = default("send_error_messages")
    session_cookie_name: str = default("session_cookie_name")
    session_cookie_max_age: int = default("session_cookie_max_age")
    session_cookie_path: str = default("session_cookie_path")
    session_cookie_domain: str | None = default("session_cookie_domain")
    session_cookie_samesite: str = default("session_cookie_samesite")
    session_cookie_httponly: bool = default("session_cookie_httponly")
    session_cookie_secure: bool | None = default("session_cookie_secure")
    session_from_cookie: str | None = default("session_from_cookie")
    cookieless: bool = default("cookieless")
    respect_gpc: bool = default("respect_gpc")
    exclude_paths: tuple[str, ...] = default("exclude_paths")
    exclude_patterns: tuple[re.Pattern[str], ...] = default("exclude_patterns")
    exclude: Callable[[Any], bool] | None = default("exclude")
    include_paths: tuple[str, ...] = default("include_paths")
    exclude_methods: frozenset[str] = default("exclude_methods")
    track_bots: bool = default("track_bots")
    handle_sigterm: bool = default("handle_sigterm")
    client_user: Callable[[Any], object] | None = default("client_user")
    sample_rate: float = default("sample_rate")
    sampler: Callable[[Any], object] | None = default("sampler")
    consent_required: bool = default("consent_required")
    consent_cookie_name: str = default("consent_cookie_name")
    respect_dnt: bool = default("respect_dnt")
    exclude_status: frozenset[int] = default("exclude_status")
    exclude_routes: frozenset[str] = default("exclude_routes")
    trusted_proxies: TrustedProxies | None = default("trusted_proxies")
    redact_paths: bool = default("redact_paths")
    redact_patterns: tuple[re.Pattern[str], ...] = default("redact_patterns")
    device_keys: bool = default("device_keys")
    country_headers: tuple[str, ...] = default("country_headers")
    geoip_database: str | None = default("geoip_database")
    send_click_ids: bool = default("send_click_ids")
    visitor_cookie: bool = default("visitor_cookie")
    visitor_cookie_name: str = default("visitor_cookie_name")
    visitor_cookie_max_age: int = default("visitor_cookie_max_age")


#: Every name an adapter takes: the client's options, these, and ``client``.
ALL_OPTION_NAMES = ADAPTER_NAMES


def split_options(
    options: Mapping[str, Any], source: str = "options"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(client options, web options); unknown names are a ConfigurationError naming them."""
    unknown = sorted(set(options) - ADAPTER_NAMES)
    if unknown:
        raise unknown_names_error("setting", source, unknown, ADAPTER_NAMES)
    client = {k: v for k, v in options.items() if k in CLIENT_OPTION_NAMES or k == CLIENT_HAND_OFF}
    web = {k: v for k, v in options.items() if k in WEB_OPTION_NAMES}
    return client, web


def handed_over_client(client_options: dict[str, Any]) -> TelemetryDeck | None:
    """Takes ``client`` out of the client options: the existing client an adapter was given
    as ``client=``, or None. Client options beside it would be ignored, so they are an
    error."""
    client = client_options.pop(CLIENT_HAND_OFF, None)
    if client is None:
        return None
    if not isinstance(client, TelemetryDeck):
        raise ConfigurationError(
            f"client must be a td_web.TelemetryDeck, got {type(client).__name__}"
        )
    others = sorted(client_options)
    if others:
        raise ConfigurationError(
            f"pass either client= or client options ({', '.join(others)}), not both"
        )
    return client


def build_web_settings(options: Mapping[str, Any]) -> WebSettings:
    """None means the default, except where the row says None switches a feature off (a
    signal type)."""
    parsed, problems = parse_options(WEB, options)
    if problems:
        raise problems[0]
    settings = WebSettings(**parsed)
    refuse_shared_cookie_names(settings)
    return settings


def refuse_shared_cookie_names(settings: WebSettings) -> None:
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
