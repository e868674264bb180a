"""Django's per-site cache and td_web's session cookie.

With ``UpdateCacheMiddleware`` (or ``CacheMiddleware``) before td_web in ``MIDDLEWARE``, the
cache stores a response after td_web added its ``Set-Cookie``, and hands that cookie, one
visitor's session, to every later visitor of the page. In that order td_web adds no cookie to a
response the cache is about to store (the request's session is then the keyed address session),
and ``manage.py check`` says so (``td_web.W004``). Placed before the cache middleware, td_web
adds its cookie after the cache stored the response, and nothing needs to change.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import get_max_age, has_vary_header

#: Middleware that stores responses in Django's cache on their way out.
STORING_CACHE_MIDDLEWARE = frozenset(
    {"django.middleware.cache.UpdateCacheMiddleware", "django.middleware.cache.CacheMiddleware"}
)


def storing_caches_before(middleware: Sequence[object], position: int) -> list[str]:
    """The cache middleware before td_web's (at ``position``): each stores what td_web sends."""
    return [path for path in middleware[:position] if path in STORING_CACHE_MIDDLEWARE]


def stored_by_site_cache(request: HttpRequest, response: HttpResponseBase) -> bool:
    """Whether the cache middleware outside td_web will store this response: the same
    conditions as ``UpdateCacheMiddleware.process_response``."""
    # Set by FetchFromCacheMiddleware on a cacheable request that missed the cache.
    if not getattr(request, "_cache_update_cache", False):
        return False
    if response.streaming or response.status_code not in (200, 304):
        return False
    if not request.COOKIES and has_vary_header(response, "Cookie"):
        return False
    if "private" in (response.get("Cache-Control") or ""):
        return False
    return get_max_age(response) != 0
