"""Reading td_web's Django settings, always at the moment they are needed.

Nothing here caches: ``override_settings`` in tests and settings changed at start-up must be seen
(the built telemetry is cached one level up, in :mod:`td_web.django.runtime`, and dropped when
Django announces a settings change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.module_loading import import_string

from .._config import ConfigurationError
from .._options import ADAPTER_NAMES, django_key, unknown_names_error

#: td_web's middleware as ``MIDDLEWARE`` may name it.
MIDDLEWARE_PATHS = frozenset(
    {"td_web.django.TelemetryDeckMiddleware", "td_web.django.middleware.TelemetryDeckMiddleware"}
)

#: The one Django setting td_web reads its options from.
SETTING = "TELEMETRYDECK"
#: Django settings whose change invalidates the built telemetry.
WATCHED_SETTINGS = frozenset(
    {
        SETTING,
        "DEBUG",
        "STATIC_URL",
        "MEDIA_URL",
        "ROOT_URLCONF",
        "SECURE_PROXY_SSL_HEADER",
        "USE_X_FORWARDED_HOST",
        "SECRET_KEY",
        "MIDDLEWARE",
    }
)
#: ``TELEMETRYDECK`` key -> option name (``CLIENT`` -> ``client`` too).
OPTION_OF_KEY = {django_key(name): name for name in ADAPTER_NAMES}
KNOWN_KEYS = frozenset(OPTION_OF_KEY)
SOURCE = "settings.TELEMETRYDECK"


def raw_setting() -> Any:
    return getattr(settings, SETTING, None)


def unknown_keys(raw: Mapping[Any, Any]) -> list[str]:
    """Keys of ``TELEMETRYDECK`` that name no option (lower-case spellings included)."""
    return sorted(
        repr(key) if not isinstance(key, str) else key for key in raw if key not in KNOWN_KEYS
    )


def unknown_keys_message(unknown: list[str]) -> str:
    return str(unknown_names_error("key", SOURCE, unknown, KNOWN_KEYS))


def options() -> dict[str, Any]:
    """``TELEMETRYDECK`` as the core's option mapping (lower-case names)."""
    raw = raw_setting()
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{SOURCE} must be a dict, got {type(raw).__name__}")
    unknown = unknown_keys(raw)
    if unknown:
        raise ConfigurationError(unknown_keys_message(unknown))
    return {OPTION_OF_KEY[key]: value for key, value in raw.items()}


def fallbacks() -> dict[str, Any]:
    """Values used where neither ``TELEMETRYDECK`` nor the environment sets one."""
    debug = bool(getattr(settings, "DEBUG", False))
    return {"test_mode": debug, "debug": debug}


def request_settings() -> tuple[bool, bool, Any]:
    """Whether ``SECURE_PROXY_SSL_HEADER`` and ``USE_X_FORWARDED_HOST`` are set, and
    ``ROOT_URLCONF``: the settings that reading a request depends on. Each is optional (a
    project may route every request by ``request.urlconf`` and have no ``ROOT_URLCONF``): what
    is not set is read as its default, never reported as td_web's error."""
    return (
        bool(getattr(settings, "SECURE_PROXY_SSL_HEADER", None)),
        bool(getattr(settings, "USE_X_FORWARDED_HOST", False)),
        getattr(settings, "ROOT_URLCONF", None),
    )


def secret_key() -> str | bytes | None:
    """Django's ``SECRET_KEY``: without a salt, td_web's session derivations are keyed with a
    one-way derivation of it (never with the key itself)."""
    value = getattr(settings, "SECRET_KEY", None)
    return value if isinstance(value, (str, bytes)) and value else None


def inside_site_cache() -> bool:
    """Whether Django's per-site cache middleware comes before td_web's in ``MIDDLEWARE``."""
    from .caching import storing_caches_before

    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    position = middleware_position(middleware)
    return position is not None and bool(storing_caches_before(middleware, position))


def middleware_position(middleware: Sequence[object]) -> int | None:
    """Where td_web's middleware (or a subclass) is in ``MIDDLEWARE``, or None."""
    return next((i for i, path in enumerate(middleware) if _is_ours(path)), None)


def _is_ours(path: object) -> bool:
    if not isinstance(path, str):
        return False
    if path in MIDDLEWARE_PATHS:
        return True
    if path.startswith("django."):
        return False
    try:
        found = import_string(path)
    except ImportError:
        return False
    # A subclass counts too; recognised by name, so settings never import the middleware.
    return isinstance(found, type) and any(
        f"{cls.__module__}.{cls.__qualname__}" in MIDDLEWARE_PATHS for cls in found.__mro__
    )


def excluded_prefixes() -> list[str]:
    """Where Django serves static and uploaded files, as request-path prefixes.

    Relative ``STATIC_URL``/``MEDIA_URL`` values come back from Django with the script prefix
    already applied; absolute URLs on another host never reach this process and are skipped.
    """
    prefixes = []
    for name in ("STATIC_URL", "MEDIA_URL"):
        value = getattr(settings, name, None)
        if not value or not isinstance(value, str):
            continue
        parts = urlsplit(value)
        if parts.scheme or parts.netloc:
            continue
        path = parts.path if parts.path.startswith("/") else "/" + parts.path
        if path != "/":
            prefixes.append(path)
    return prefixes
