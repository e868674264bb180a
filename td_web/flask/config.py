"""Reading td_web's options from a Flask app: ``TELEMETRYDECK_*`` config keys, keyword
arguments, and the app's debug/testing flag as the test-mode fallback."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from .._options import ADAPTER_NAMES, FLASK_PREFIX, flask_key, unknown_names_error

#: Flask config key -> option name (``TELEMETRYDECK_CLIENT`` -> ``client`` too).
OPTION_OF_KEY = {flask_key(name): name for name in ADAPTER_NAMES}


def options_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``TELEMETRYDECK_<NAME>`` key as ``name``; unknown keys are a ConfigurationError
    naming them (a typo would otherwise be silently ignored)."""
    options: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in config.items():
        if not key.startswith(FLASK_PREFIX):
            continue
        name = OPTION_OF_KEY.get(key.upper())  # TELEMETRYDECK_app_id counts, as it always has
        if name is not None:
            options[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise unknown_names_error("key", "the Flask config", sorted(unknown), OPTION_OF_KEY)
    return options


def resolve_options(app: Flask, *overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The app's config keys, then each mapping of keyword arguments on top (later wins)."""
    options = options_from_config(app.config)
    for mapping in overrides:
        options.update(mapping)
    return options


#: The flush interval in the child process of Werkzeug's reloader (``flask run --debug``).
RELOADER_FLUSH_INTERVAL = 0.5


def fallbacks(app: Flask) -> dict[str, Any]:
    """Used only where neither the config nor the environment says otherwise."""
    values: dict[str, Any] = {
        "test_mode": bool(app.debug or app.testing),
        "debug": bool(app.debug),
    }
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        # The reloader's parent process SIGKILLs this one when it is stopped (Ctrl-C, SIGTERM),
        # so the exit flush may never run: send promptly instead.
        values["flush_interval"] = RELOADER_FLUSH_INTERVAL
    return values
