"""Filters that need the response: ``exclude_status`` and ``exclude_routes``.

Decided when the request finishes (the status and the matched route are known only then), on
the request's thread, so that an excluded request queues nothing. Routes are compared as
normalised templates (``/items/{id}``), so ``/items/<int:id>`` in Flask and ``items/<int:id>/``
in Django are the same entry, whatever the id in the path. The options' parsers live here too:
each error names the setting and the value, at start-up, never on a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._config import ConfigurationError
from .routes import normalize_route

if TYPE_CHECKING:
    from .settings import WebSettings

_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


class ResponseFilter:
    def __init__(self, settings: WebSettings) -> None:
        self._statuses = settings.exclude_status
        self._routes = settings.exclude_routes
        self.active = bool(self._statuses or self._routes)

    def excludes(self, status: int, route: str | None) -> bool:
        if status in self._statuses:
            return True
        return route is not None and bool(self._routes) and route_key(route) in self._routes


def route_key(route: str) -> str:
    """A route template as ``exclude_routes`` compares it: normalised, no trailing slash."""
    return normalize_route(route).rstrip("/") or "/"


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
