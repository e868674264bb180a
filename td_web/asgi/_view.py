"""An ASGI ``http`` scope as the core's :class:`RequestView`: a handful of plain strings.

Runs on every request, so it reads only the headers the core needs, straight from the raw
header list (one dict lookup per header), and builds no header dict.
"""

from __future__ import annotations

from .._web import RequestView
from ._types import Scope

_HOST, _USER_AGENT, _REFERER, _ACCEPT_LANGUAGE, _COOKIE, _GPC = range(6)
_WANTED = {
    b"host": _HOST,
    b"user-agent": _USER_AGENT,
    b"referer": _REFERER,
    b"accept-language": _ACCEPT_LANGUAGE,
    b"cookie": _COOKIE,
    b"sec-gpc": _GPC,
}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def request_view(scope: Scope, country_names: tuple[bytes, ...] = ()) -> RequestView:
    """``country_names``: the lower-case names of the trusted ``country_headers``."""
    values: list[str | None] = [None, None, None, None, None, None]
    countries: list[str | None] = [None] * len(country_names)
    wanted = _WANTED.get
    for name, value in scope.get("headers") or ():
        slot = wanted(name)
        if slot is None:
            if country_names and name in country_names:
                countries[country_names.index(name)] = value.decode("latin-1")
            continue
        text = value.decode("latin-1")
        if slot == _COOKIE and values[_COOKIE] is not None:
            # HTTP/2 clients may split cookies over several headers.
            text = f"{values[_COOKIE]}; {text}"
        values[slot] = text
    scheme: str = scope.get("scheme") or "http"
    client = scope.get("client")
    query: bytes = scope.get("query_string") or b""
    view = RequestView(
        method=scope["method"],
        scheme=scheme,
        host=values[_HOST] or server_host(scope, scheme),
        path=full_path(scope["path"], scope.get("root_path") or ""),
        query_string=query.decode("latin-1"),
        user_agent=values[_USER_AGENT],
        referer=values[_REFERER],
        accept_language=values[_ACCEPT_LANGUAGE],
        cookies=values[_COOKIE],
        client_addr=client[0] if client else None,
        gpc=values[_GPC],
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
    host, port = server[0], server[1]
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return str(host)
    return f"{host}:{port}"
