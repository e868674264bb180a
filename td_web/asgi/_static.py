"""Where an application serves ``StaticFiles``: those URL prefixes get no automatic signal.

The routes are only complete once the application runs (routes and mounts are often added
after the middleware), so the middleware looks once, at the first request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_MAX_DEPTH = 16


def static_prefixes(app: object, root_path: str) -> list[str]:
    """URL prefixes (``root_path`` included, ending in ``/``) of every ``StaticFiles`` mount
    reachable through ``Mount``s from ``app``'s routes."""
    try:
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles
    except ImportError:
        return []
    found: list[str] = []

    def visit(routes: Iterable[Any], prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        for route in routes:
            if not isinstance(route, Mount) or "{" in route.path:
                continue  # a parameterized mount has no fixed prefix to exclude
            if isinstance(route.app, StaticFiles):
                found.append(prefix + route.path + "/")
            elif route.routes:
                visit(route.routes, prefix + route.path, depth + 1)

    visit(_routes_of(app), root_path.rstrip("/"), 0)
    return found


def _routes_of(app: object) -> Iterable[Any]:
    routes = getattr(app, "routes", None)
    return routes if isinstance(routes, (list, tuple)) else ()
