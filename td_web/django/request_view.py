"""A Django request as the core's :class:`RequestView`, and the route template it resolved to.

Both run on every request: plain attribute and ``META`` reads only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.http import HttpRequest

from .._web import RequestView, WebTelemetry
from .._web.payload import host_with_port

#: Replaces the language segment of routes under ``i18n_patterns()``: ``/en/about/`` and
#: ``/de/about/`` are one page, so they are one route.
LANGUAGE_PLACEHOLDER = "{language}"


def request_view(
    request: HttpRequest,
    web: WebTelemetry,
    proxy_scheme: bool = True,
    forwarded_host: bool = True,
) -> RequestView:
    """The view ``web`` begins the request with. ``proxy_scheme`` and ``forwarded_host``:
    whether ``SECURE_PROXY_SSL_HEADER`` and ``USE_X_FORWARDED_HOST`` are set (True, the
    default, always gives Django's own answer)."""
    meta = request.META
    # Without a proxy header setting, request.scheme is _get_scheme() (the hook WSGIRequest and
    # ASGIRequest implement) after a settings read that costs more than the rest of it; and a
    # WSGIRequest's _get_scheme() reads wsgi.url_scheme from the environ that is its META
    # (ASGIRequest's META has no such key: its scheme comes from the scope).
    if proxy_scheme:
        scheme = request.scheme
    else:
        scheme = meta.get("wsgi.url_scheme") or request._get_scheme()  # type: ignore[attr-defined]
    # The raw Host: get_host() raises DisallowedHost for a host outside ALLOWED_HOSTS, which is
    # Django's to answer (with a 400), not ours to raise. The value is only reported.
    host = None if forwarded_host else meta.get("HTTP_HOST")
    if host is None:
        if forwarded_host:  # X-Forwarded-Host: Django's own rules
            host = request._get_raw_host()  # type: ignore[attr-defined]
        else:  # an HTTP/1.0 request: Django would write an IPv6 server as "::1:8000"
            host = host_with_port(
                meta.get("SERVER_NAME", ""), meta.get("SERVER_PORT"), scheme or ""
            )
    # Includes SCRIPT_NAME (FORCE_SCRIPT_NAME), unlike path_info; the raw Cookie header is
    # cheaper than parsing request.COOKIES for the one cookie td_web reads.
    return web.view_from_meta(meta, request.method or "GET", scheme or "http", host, request.path)


def route_template(request: HttpRequest, root_urlconf: Any = None) -> str | None:
    """Django's route for the matched URL pattern, prefixes of ``include()`` joined in
    (``path()`` converters and ``re_path()`` regexes as written; the core normalises both).
    None when nothing matched (a 404 from the resolver). ``root_urlconf``: ``ROOT_URLCONF``."""
    match = request.resolver_match
    if match is None:
        return None
    route = match.route or "/"  # path("", ...) at the root
    urlconf = (
        getattr(request, "urlconf", None) or root_urlconf or getattr(settings, "ROOT_URLCONF", None)
    )
    if urlconf is not None and is_language_prefix_patterns_used(urlconf)[0]:
        route = _without_language(route)
    return route


def _without_language(route: str) -> str:
    first, slash, rest = route.partition("/")
    if slash and first in _language_codes():
        return f"{LANGUAGE_PLACEHOLDER}/{rest}"
    return route


_languages_seen: tuple[object, str, frozenset[str]] = ((), "", frozenset())


def _language_codes() -> frozenset[str]:
    """The language codes a LocalePrefixPattern can put first: one of LANGUAGES under
    LocaleMiddleware, LANGUAGE_CODE without it. Rebuilt only when those settings change."""
    global _languages_seen
    languages, code = settings.LANGUAGES, settings.LANGUAGE_CODE
    seen_languages, seen_code, codes = _languages_seen
    if languages is not seen_languages or code != seen_code:
        codes = frozenset([*(item[0] for item in languages), code])
        _languages_seen = (languages, code, codes)
    return codes
