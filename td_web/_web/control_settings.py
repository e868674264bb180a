"""Validation of the options that put the site's users in control: sampling, consent and
Do Not Track, status and route filters, trusted proxies. Each error names the setting and the
value, at start-up, never on a request."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from .._config import ConfigurationError, parse_bool, sync_callable
from .proxies import TrustedProxies
from .routes import normalize_route

CONTROL_OPTION_NAMES = frozenset(
    {
        "sample_rate",
        "sampler",
        "consent_required",
        "consent_cookie_name",
        "respect_dnt",
        "exclude_status",
        "exclude_routes",
        "trusted_proxies",
    }
)
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def coerce_control_option(name: str, value: Any) -> Any:
    if name == "sample_rate":
        return parse_rate(value, name)
    if name == "sampler":
        return sync_callable(value, name)
    if name in ("consent_required", "respect_dnt"):
        return parse_bool(value, name)
    if name == "consent_cookie_name":
        if not isinstance(value, str) or not _COOKIE_NAME.fullmatch(value):
            raise ConfigurationError(f"{name} must be a valid cookie name, got {value!r}")
        return value
    if name == "exclude_status":
        return parse_statuses(value, name)
    if name == "exclude_routes":
        return frozenset(route_key(route) for route in _strings(value, name))
    if name == "trusted_proxies":
        return TrustedProxies.parse(value, name)
    raise AssertionError(name)  # pragma: no cover - CONTROL_OPTION_NAMES lists the cases


def route_key(route: str) -> str:
    """A route template as ``exclude_routes`` compares it: normalised, no trailing slash."""
    return normalize_route(route).rstrip("/") or "/"


def parse_rate(value: object, setting: str) -> float:
    """A sampling rate: a finite number from 0.0 to 1.0 (a numeric string from settings)."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ConfigurationError(f"{setting} must be a number from 0.0 to 1.0, got {value!r}")
    return number


def parse_statuses(value: object, setting: str) -> frozenset[int]:
    """Status codes (404, "404") and classes ("4xx") as the set of codes they cover."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [value]
    codes: set[int] = set()
    for item in _items(value, setting):
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            codes.add(item)
            continue
        if isinstance(item, str):
            text = item.strip()
            status_class = _STATUS_CLASS.match(text)
            if status_class:
                base = int(status_class.group(1)) * 100
                codes.update(range(base, base + 100))
                continue
            if text.isdigit() and 100 <= int(text) <= 599:
                codes.add(int(text))
                continue
        raise ConfigurationError(
            f"{setting} entries must be status codes (404) or classes ('4xx'), got {item!r}"
        )
    return frozenset(codes)


def _items(value: object, setting: str) -> list[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{setting} must be a list, got {value!r}")
    return list(value)


def _strings(value: object, setting: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    items = _items(value, setting)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{setting} entries must be route templates, got {item!r}")
    return [item for item in items if isinstance(item, str)]
