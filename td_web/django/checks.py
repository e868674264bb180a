"""System checks (``manage.py check``, run by ``runserver`` and ``migrate``), with stable ids:

- ``td_web.E001``: no app id (neither ``TELEMETRYDECK["APP_ID"]`` nor ``TELEMETRYDECK_APP_ID``)
  while td_web is enabled.
- ``td_web.E002``: ``TELEMETRYDECK`` is not a dict or has keys that name no option.
- ``td_web.E003``: a ``TELEMETRYDECK`` value (or ``TELEMETRYDECK_*`` variable) is invalid.
- ``td_web.W001``: the app id does not look like a TelemetryDeck app id (a UUID).
- ``td_web.W002``: the middleware comes after middleware that answers requests itself, so
  those answers are not seen (or seen with the wrong status).
- ``td_web.W003``: the app is installed but the middleware is not in ``MIDDLEWARE``.
- ``td_web.W004``: ``UpdateCacheMiddleware`` (or ``CacheMiddleware``) comes before the
  middleware, so the per-site cache would store td_web's session cookie with the page; td_web
  then sets no cookie on pages the cache stores (see ``td_web.django.caching``).

Each setting is validated by its option's parser in the table (``td_web._options``), without
building a client, so the checks start no thread and log nothing; one E003 per bad setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error

from .._config import ConfigurationError, require_app_id
from .._option_values import app_id_problem
from .._options import CLIENT, OPTIONS, WEB, parse_options
from .._web.settings import (
    WebSettings,
    handed_over_client,
    refuse_shared_cookie_names,
    split_options,
)
from . import conf
from .caching import storing_caches_before

#: Middleware that can answer a request on its own or turn a response into another one
#: (a redirect instead of a 404, a cached page): td_web must come before them to see that.
ANSWERING_MIDDLEWARE = (
    "django.middleware.common.CommonMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.cache.FetchFromCacheMiddleware",
    "django.middleware.cache.CacheMiddleware",
    "django.contrib.redirects.middleware.RedirectFallbackMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
)
_HINT_APP_ID = (
    "Set TELEMETRYDECK['APP_ID'] (or the TELEMETRYDECK_APP_ID environment variable) to your "
    "TelemetryDeck app id, or set TELEMETRYDECK['ENABLED'] = False to run without telemetry."
)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = conf.raw_setting()
    if raw is not None and not isinstance(raw, Mapping):
        return [
            Error(
                f"{conf.SOURCE} must be a dict, got {type(raw).__name__}.",
                hint="TELEMETRYDECK = {'APP_ID': '...', 'SALT': '...'}",
                id="td_web.E002",
            )
        ]
    unknown = conf.unknown_keys(raw or {})
    if unknown:
        return [Error(conf.unknown_keys_message(unknown), id="td_web.E002")]
    options = conf.options()
    client_options, web_options = split_options(options, conf.SOURCE)
    try:
        client = handed_over_client(client_options)
    except ConfigurationError as exc:
        return [_invalid(exc)]
    client_values: dict[str, Any] = {}
    problems: list[ConfigurationError] = []
    if client is None:
        client_values, problems = parse_options(CLIENT, client_options, conf.fallbacks())
    web_values, web_problems = parse_options(WEB, web_options)
    problems += web_problems
    if not problems:
        try:
            refuse_shared_cookie_names(WebSettings(**web_values))
        except ConfigurationError as exc:
            problems.append(exc)
    if problems:
        return [_invalid(problem) for problem in problems]
    if client is not None:
        return []  # an existing client was configured (and checked) where it was built
    enabled = client_values.get("enabled", OPTIONS["enabled"].default)
    app_id = client_values.get("app_id", OPTIONS["app_id"].default)
    try:
        require_app_id(enabled, app_id)
    except ConfigurationError:
        return [
            Error(
                "td_web has no TelemetryDeck app id, so no request is tracked.",
                hint=_HINT_APP_ID,
                id="td_web.E001",
            )
        ]
    problem = app_id_problem(app_id) if enabled else None
    if problem:
        return [checks.Warning(f"td_web: {problem}.", id="td_web.W001")]
    return []


def _invalid(problem: ConfigurationError) -> CheckMessage:
    return Error(
        f"Invalid td_web setting: {problem}",
        hint="Options are named in lower case in messages; the TELEMETRYDECK key is "
        "the same name in upper case (flush_interval: TELEMETRYDECK['FLUSH_INTERVAL']).",
        id="td_web.E003",
    )


def check_middleware(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    position = conf.middleware_position(middleware)
    if position is None:
        return [
            checks.Warning(
                "td_web.django is installed but TelemetryDeckMiddleware is not in MIDDLEWARE, "
                "so no request is tracked.",
                hint="Add 'td_web.django.TelemetryDeckMiddleware' at the top of MIDDLEWARE.",
                id="td_web.W003",
            )
        ]
    found: list[CheckMessage] = []
    caches = storing_caches_before(middleware, position)
    if caches:
        found.append(
            checks.Warning(
                f"TelemetryDeckMiddleware comes after {', '.join(caches)}: the per-site cache "
                "would store td_web's session cookie with each page and hand it to every "
                "visitor, so td_web sets no cookie on pages it stores (their visitors get "
                "address-derived sessions instead).",
                hint="Move 'td_web.django.TelemetryDeckMiddleware' before "
                "UpdateCacheMiddleware (to the top of MIDDLEWARE).",
                id="td_web.W004",
            )
        )
    before = [path for path in middleware[:position] if path in ANSWERING_MIDDLEWARE]
    if before:
        found.append(
            checks.Warning(
                f"TelemetryDeckMiddleware comes after {', '.join(before)}, so requests those "
                "answer themselves (redirects, cached pages) are not tracked or get the wrong "
                "status.",
                hint="Move 'td_web.django.TelemetryDeckMiddleware' to the top of MIDDLEWARE "
                "(right after SecurityMiddleware is fine).",
                id="td_web.W002",
            )
        )
    return found
