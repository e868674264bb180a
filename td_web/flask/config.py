"""Reading td_web's options from a Flask app: ``TELEMETRYDECK_*`` config keys, keyword
arguments, and the app's debug/testing flag as the test-mode fallback."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from .._config import ConfigurationError
from .._web.settings import ALL_OPTION_NAMES

PREFIX = "TELEMETRYDECK_"


def config_key(name: str) -> str:
    return PREFIX + name.upper()


def options_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``TELEMETRYDECK_<NAME>`` key as ``name``; unknown keys are a ConfigurationError
    naming them (a typo would otherwise be silently ignored)."""
    options: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in config.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if name in ALL_OPTION_NAMES:
            options[name] = value
        else:
            unknown.append(key)
    if unknown:
        known = sorted(config_key(name) for name in ALL_OPTION_NAMES)
        raise ConfigurationError(
            f"unknown td_web key(s) in the Flask config: {', '.join(sorted(unknown))}. "
            f"Known: {', '.join(known)}"
        )
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
