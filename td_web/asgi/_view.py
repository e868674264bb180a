"""An ASGI ``http`` scope as the core's :class:`RequestView`: a handful of plain strings.

Runs on every request, so it reads only the headers the core needs, straight from the raw
header list (one dict lookup per header), and builds no header dict.
"""

from __future__ import annotations

from .._types import Scope
from .._web import RequestView, WebTelemetry
from .._web.payload import host_with_port

_HOST, _USER_AGENT, _REFERER, _ACCEPT_LANGUAGE, _COOKIE, _GPC = range(6)
_DNT, _FORWARDED, _FORWARDED_FOR, _FORWARDED_PROTO, _FORWARDED_HOST = range(6, 11)
_DIRECT = {
    b"host": _HOST,
    b"user-agent": _USER_AGENT,
    b"referer": _REFERER,
    b"accept-language": _ACCEPT_LANGUAGE,
    b"cookie": _COOKIE,
    b"sec-gpc": _GPC,
    b"dnt": _DNT,
}
#: With the forwarding headers, read only when the core trusts them (``reads_forwarding``).
_FORWARDING = {
    **_DIRECT,
    b"forwarded": _FORWARDED,
    b"x-forwarded-for": _FORWARDED_FOR,
    b"x-forwarded-proto": _FORWARDED_PROTO,
    b"x-forwarded-host": _FORWARDED_HOST,
}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def request_view(scope: Scope, web: WebTelemetry) -> RequestView:
    """The view ``web`` begins the request with."""
    country_names: tuple[bytes, ...] = web.geo.asgi_names
    values: list[str | None] = [None] * len(_FORWARDING)
    countries: list[str | None] = [None] * len(country_names)
    wanted = (_FORWARDING if web.reads_forwarding else _DIRECT).get
    for name, value in scope.get("headers") or ():
        slot = wanted(name)
        if slot is None:
            if country_names and name in country_names:
                countries[country_names.index(name)] = value.decode("latin-1")
            continue
        text = value.decode("latin-1")
        previous = values[slot]
        if previous is not None:
            if slot == _COOKIE:
                # HTTP/2 clients may split cookies over several headers.
                text = f"{previous}; {text}"
            elif slot >= _FORWARDED:
                # Repeated forwarded headers are one list, in order.
                text = f"{previous}, {text}"
        values[slot] = text
    scheme: str = scope.get("scheme") or "http"
    client = scope.get("client")
    query: bytes = scope.get("query_string") or b""
    view = RequestView(  # positional: see RequestView.__init__
        scope["method"],
        scheme,
        values[_HOST] or server_host(scope, scheme),
        full_path(scope["path"], scope.get("root_path") or ""),
        query.decode("latin-1"),
        values[_USER_AGENT],
        values[_REFERER],
        values[_ACCEPT_LANGUAGE],
        values[_COOKIE],
        client[0] if client else None,
        values[_GPC],
        values[_DNT],
        values[_FORWARDED],
        values[_FORWARDED_FOR],
        values[_FORWARDED_PROTO],
        values[_FORWARDED_HOST],
    )
    if country_names:
        view.countries = tuple(countries)
    return view


def full_path(path: str, root_path: str) -> str:
    """The path the client asked for, whichever ``root_path`` convention the server follows.

    Servers following the current ASGI spec (uvicorn >= 0.26, Starlette >= 0.35) put the
    root path inside ``path``; older ones and Starlette's test client may leave it out.
    """
    if not root_path or (
        path.startswith(root_path) and (len(path) == len(root_path) or path[len(root_path)] == "/")
    ):
        return path
    return root_path + path


def server_host(scope: Scope, scheme: str) -> str:
    """``host[:port]`` from ``scope["server"]``, for clients that sent no Host header."""
    server = scope.get("server")
    if not server:
        return ""
    host, port = str(server[0]), server[1]
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        port = None
    return host_with_port(host, port)
