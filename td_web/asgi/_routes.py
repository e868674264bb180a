"""The route template of a request that the application has routed, read after the fact.

The template is only known once the framework has routed the request, and frameworks record
it differently:

* Starlette >= 1.8 sets ``scope["route"]`` at every router level (the innermost route wins);
  FastAPI's own routes set it on every Starlette version.
* Each ``Mount`` appends the matched prefix to ``scope["root_path"]`` (the concrete text, not
  the template), on every Starlette version; Starlette < 0.35 also strips it from ``path``.
* FastAPI versions that keep included routers unflattened leave the router's own (prefixless)
  route in ``scope["route"]`` and the route as included, prefix and all, in the private
  ``scope["fastapi"]["effective_route_context"]``.
* Older Starlette versions record no route at all for their own ``Route`` objects, only the
  ``endpoint``; then the router tree is walked again the way the router did.

All of this reads the scope dict the middleware handed down, which the routers mutate in place.
A middleware below ours that replaces the scope with a copy hides the route (None is reported).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from .._types import Scope

_MAX_DEPTH = 16
_MOUNT_TAIL = "/{path}"
_PREFIX_CACHE_LIMIT = 1024

#: (id(router), entry root_path, grown root_path) -> (router, mount template). Retracing the
#: mounts costs a regex match per mount and level; the answer only depends on the key. A
#: parameterized mount adds one entry per value, so the cache is cleared when full.
_prefix_cache: dict[tuple[int, str, str], tuple[object, str]] = {}


@functools.cache
def _starlette_routing() -> ModuleType | None:
    try:
        import starlette.routing
    except ImportError:  # a plain ASGI app without Starlette records no routes to read
        return None
    return starlette.routing


def route_template(scope: Scope, entry_path: str, entry_root_path: str) -> str | None:
    """The raw template (convertors and prefixes included; the core normalizes it), or None
    when nothing was routed (404, a plain ASGI app) or the route cannot be told."""
    routing = _starlette_routing()
    if routing is None:
        return None
    leaf = scope.get("route")
    effective = _fastapi_effective_route(scope) if "fastapi" in scope else None
    if leaf is None and effective is not None:
        leaf = getattr(effective, "starlette_route", None)
    if leaf is None:
        if "endpoint" not in scope:
            return None  # no route matched
        return _walk_all(routing, scope, entry_path, entry_root_path)
    if effective is not None and getattr(effective, "original_route", None) is leaf:
        tail = _own_template(effective)
    elif isinstance(leaf, routing.Mount):
        if not leaf.routes:
            tail = _MOUNT_TAIL  # a mounted app without routes: its prefix is in root_path
        elif scope.get("endpoint") is leaf.app:
            return None  # routed into the mount, but nothing inside it matched (404)
        else:  # a router inside that records no route (FastAPI's, for Starlette routes)
            return _walk_all(routing, scope, entry_path, entry_root_path)
    else:
        tail = _own_template(leaf)
    if tail is None:
        return None
    root_path = scope.get("root_path") or ""
    if root_path == entry_root_path:
        return tail
    return _mount_prefix(routing, scope, entry_path, entry_root_path, root_path) + tail


def _fastapi_effective_route(scope: Scope) -> Any:
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        return fastapi_scope.get("effective_route_context")
    return None


def _own_template(route: object) -> str | None:
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else None


def _probe(scope: Scope, path: str, root_path: str) -> dict[str, Any]:
    """A fresh scope as the top-level router saw it, for matching again."""
    return {
        "type": scope["type"],
        "method": scope.get("method", "GET"),
        "path": path,
        "root_path": root_path,
        "headers": scope.get("headers") or [],
        "path_params": {},
    }


def _walk_all(routing: ModuleType, scope: Scope, path: str, root_path: str) -> str | None:
    """Route again from the top-level router (only for Starlette versions that record no
    route): the first full match wins, else the first partial one (405), as in Starlette."""
    routes = getattr(scope.get("router"), "routes", None)
    if not routes:
        return None
    return _walk(routing, routes, _probe(scope, path, root_path), 0)


def _walk(
    routing: ModuleType, routes: Iterable[Any], probe: dict[str, Any], depth: int
) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    full = partial = None
    for route in routes:
        match, child = route.matches(probe)
        if match is routing.Match.FULL:
            full = (route, child)
            break
        if match is routing.Match.PARTIAL and partial is None:
            partial = (route, child)
    chosen = full or partial
    if chosen is None:
        return None
    route, child = chosen
    if isinstance(route, routing.Mount):
        mount_path: str = route.path
        if not route.routes:
            return mount_path + _MOUNT_TAIL
        rest = _walk(routing, route.routes, {**probe, **child}, depth + 1)
        return None if rest is None else mount_path + rest
    if isinstance(route, routing.Host):
        return _walk(routing, route.routes, {**probe, **child}, depth + 1)
    return _own_template(route)


def _mount_prefix(
    routing: ModuleType, scope: Scope, entry_path: str, entry_root_path: str, root_path: str
) -> str:
    """The template of the mounts that grew ``root_path`` from ``entry_root_path``.

    Retraces only the ``Mount``/``Host`` levels the request went through, so a parameterized
    mount (``/users/{user_id}``) yields its template, never the identifier from the URL.
    """
    router = scope.get("router")
    key = (id(router), entry_root_path, root_path)
    cached = _prefix_cache.get(key)
    if cached is not None and cached[0] is router:
        return cached[1]
    routes = getattr(router, "routes", None)
    probe = _probe(scope, entry_path, entry_root_path)
    prefix = ""
    through_host = False
    for _ in range(_MAX_DEPTH):
        if probe["root_path"] == root_path:
            if not through_host:  # a Host level also depends on the Host header
                if len(_prefix_cache) >= _PREFIX_CACHE_LIMIT:
                    _prefix_cache.clear()
                _prefix_cache[key] = (router, prefix)
            return prefix
        step = _enter(routing, routes or (), probe, root_path)
        if step is None:
            break
        route, probe = step
        if isinstance(route, routing.Mount):
            prefix += route.path
        else:
            through_host = True
        routes = route.routes
    # A level we cannot retrace (a router that is not Starlette's, a FastAPI included router
    # holding a mount): keep the concrete prefix, with any path parameter values templated.
    return _templated(root_path[len(entry_root_path) :], scope.get("path_params"))


def _enter(
    routing: ModuleType, routes: Iterable[Any], probe: dict[str, Any], root_path: str
) -> tuple[Any, dict[str, Any]] | None:
    for route in routes:
        if not isinstance(route, (routing.Mount, routing.Host)):
            continue
        match, child = route.matches(probe)
        if match is not routing.Match.FULL:
            continue
        entered = {**probe, **child}
        if root_path.startswith(entered.get("root_path") or ""):
            return route, entered
    return None


def _templated(concrete: str, path_params: object) -> str:
    if not isinstance(path_params, Mapping) or not path_params:
        return concrete
    names = {str(value): name for name, value in path_params.items()}
    return "/".join(
        "{" + names[part] + "}" if part in names else part for part in concrete.split("/")
    )
