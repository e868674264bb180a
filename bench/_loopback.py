"""Keep a benchmark process on the loopback address, whatever the libraries in it try.

Every peer under test is configured to send to a local dummy server, but a library may still
phone home on its own (a version check, a feature-flag fetch, DNS for a default host). An audit
hook sees every ``socket.connect`` and name lookup in the process: one aimed anywhere but
loopback is refused (the library sees an ``OSError``) and recorded, so the report can say that
nothing left the machine, or name what tried.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

#: "host:port" of every refused attempt, in order, without duplicates.
blocked: list[str] = []
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) means the local host
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return  # Unix sockets stay on the machine
        host, port = address[0], address[1]
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
    else:
        return
    if not is_loopback(host):
        where = f"{host}:{port}"
        if where not in blocked:
            blocked.append(where)
        raise OSError(f"bench: refused a connection to {where} (loopback only)")


_installed = False


def install() -> None:
    """Refuse non-loopback connections and lookups in this process from now on (idempotent)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
