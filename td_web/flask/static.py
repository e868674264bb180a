"""The URL prefixes of an app's static files (its own and its blueprints'), never tracked."""

from __future__ import annotations

from collections.abc import Iterator

from werkzeug.routing import Map


def static_prefixes(url_map: Map) -> Iterator[str]:
    """``/static/`` for ``/static/<path:filename>``, ``/admin/assets/`` for a blueprint's
    static folder under a URL prefix; a static folder served at the root gives nothing."""
    for rule in url_map.iter_rules():
        endpoint = rule.endpoint
        if endpoint != "static" and not endpoint.endswith(".static"):
            continue
        template = rule.rule
        prefix = template.split("<", 1)[0]
        if prefix and prefix != "/":
            yield prefix if prefix.endswith("/") else prefix + "/"
