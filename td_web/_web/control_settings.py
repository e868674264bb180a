"""Parsers of the options that put the site's users in control: sampling rates, status and
route filters (``settings.OPTION_PARSERS`` names the parser of each option). Each error names
the setting and the value, at start-up, never on a request."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from .._config import ConfigurationError
from .routes import normalize_route

_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


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


def route_templates(value: object, setting: str) -> list[str]:
    """``exclude_routes``: one template or a list of them."""
    if isinstance(value, str):
        value = [value]
    items = _items(value, setting)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{setting} entries must be route templates, got {item!r}")
    return [item for item in items if isinstance(item, str)]
