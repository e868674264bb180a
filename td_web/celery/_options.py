"""What ``td_web.celery.setup()`` is configured with: its keyword arguments, else Django's
``TELEMETRYDECK_CELERY`` (the same keys, upper-cased) and ``TELEMETRYDECK`` (the client's keys).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .._client import TelemetryDeck
from .._option_values import ConfigurationError, parse_bool
from .._web.settings import handed_over_client, split_options

#: The Django setting with this integration's own keys (and client keys that override
#: ``TELEMETRYDECK``'s for workers).
DJANGO_SETTING = "TELEMETRYDECK_CELERY"


@dataclass(frozen=True)
class CeleryOptions:
    #: The signal sent once per task run; None sends none.
    task_signal: str | None = "Celery.task"
    #: Put the request's session ID and clientUser hash into messages of tasks sent while a
    #: request (or another task) is handled, and use them in the task.
    carry_context: bool = True
    #: The client's options (``client`` reuses an existing TelemetryDeck).
    client_options: dict[str, Any] = field(default_factory=dict)
    #: Used only where neither the options nor the environment set a value (Django's DEBUG).
    fallbacks: dict[str, Any] = field(default_factory=dict)


OWN_OPTION_NAMES = frozenset(f.name for f in fields(CeleryOptions)) - {
    "client_options",
    "fallbacks",
}


def resolve(options: Mapping[str, Any], *, django: bool = True) -> CeleryOptions:
    """Keyword arguments win; in a Django project (``django=True``), its settings fill the
    rest."""
    merged: dict[str, Any] = {}
    fallbacks: dict[str, Any] = {}
    django_settings = _django_settings() if django else None
    given_client = options.get("client") is not None
    if django_settings is not None:
        client_part = _lower_keys(getattr(django_settings, "TELEMETRYDECK", None), "TELEMETRYDECK")
        # The request-only keys of TELEMETRYDECK (cookies, exclusions) mean nothing here.
        if not given_client:
            merged.update(split_options(client_part, "settings.TELEMETRYDECK")[0])
        celery_part = _lower_keys(getattr(django_settings, DJANGO_SETTING, None), DJANGO_SETTING)
        merged.update(_given(celery_part))
        fallbacks["test_mode"] = bool(getattr(django_settings, "DEBUG", False))
    merged.update(_given(options))
    own = {name: merged.pop(name) for name in OWN_OPTION_NAMES if name in merged}
    client_options, web_options = split_options(merged, "td_web.celery.setup()")
    if web_options:
        raise ConfigurationError(
            f"td_web.celery.setup() has no request options ({', '.join(sorted(web_options))})"
        )
    # The same rule as the middlewares' (a client, or client options, not both); the client
    # stays among the options, where build_client finds it.
    handed_over_client(dict(client_options))
    task_signal = own.get("task_signal", CeleryOptions.task_signal)
    if task_signal is not None and (not isinstance(task_signal, str) or not task_signal.strip()):
        raise ConfigurationError(
            f"task_signal must be a signal type such as 'Celery.task' or None, got {task_signal!r}"
        )
    return CeleryOptions(
        task_signal=task_signal,
        carry_context=parse_bool(own.get("carry_context", True), "carry_context"),
        client_options=client_options,
        fallbacks=fallbacks,
    )


def _django_settings() -> Any:
    """Django's settings when this process is a Django project, else None. A plain Celery
    worker never imports Django; a project's worker reads its settings module on first use
    (``celery -A proj`` imports the app module before Django has loaded anything)."""
    if "django.conf" not in sys.modules and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return None
    try:
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return None
    return settings


def django_settings_loaded() -> bool:
    if "django.conf" not in sys.modules:
        return False
    from django.conf import settings

    return bool(settings.configured)


def _lower_keys(raw: object, setting: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"settings.{setting} must be a dict, got {type(raw).__name__}")
    return {str(key).lower(): value for key, value in raw.items()}


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """A client option set to None is not given (a later default applies); ``task_signal``
    set to None switches the signal off."""
    return {
        key: value for key, value in options.items() if value is not None or key in OWN_OPTION_NAMES
    }


def build_client(options: CeleryOptions) -> TelemetryDeck:
    client = options.client_options.get("client")
    if isinstance(client, TelemetryDeck):
        return client
    return TelemetryDeck.from_options(options.client_options, options.fallbacks)
