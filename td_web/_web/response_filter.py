"""Filters that need the response: ``exclude_status`` and ``exclude_routes``.

Decided when the request finishes (the status and the matched route are known only then), on
the request's thread, so that an excluded request queues nothing. Routes are compared as
normalised templates (``/items/{id}``), so ``/items/<int:id>`` in Flask and ``items/<int:id>/``
in Django are the same entry, whatever the id in the path. The options are parsed by their rows
in ``td_web._options``, at start-up, never on a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .routes import normalize_route

if TYPE_CHECKING:
    from .settings import WebSettings


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
