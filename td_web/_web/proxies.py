"""The client's address, scheme and host behind reverse proxies (``trusted_proxies``).

``Forwarded`` and ``X-Forwarded-*`` are plain request headers: anyone can send them. They are
read only when the request arrived through a proxy the site named, either by address (the
socket peer is in one of the given addresses or CIDR ranges) or by a count of hops (the site
promises that exactly that many proxies stand in front of it, as proxy-fix middleware does).

The client is then the address the outermost trusted proxy saw: with a hop count, the entry
that many places from the right of the ``for`` list; with addresses, the first entry from the
right that is not itself a trusted proxy. The scheme and host are those the nearest proxy
reports (the rightmost value), which is the proxy the site trusts directly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._config import ConfigurationError
from .._log import throttled

if TYPE_CHECKING:
    from . import RequestView

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST = re.compile(r"^[A-Za-z0-9.\-\[\]:_]{1,255}$")
#: More entries than any real proxy chain; a longer header is read only up to here.
_MAX_HOPS = 32


@dataclass(frozen=True)
class TrustedProxies:
    """Either ``hops`` (a count) or ``networks`` (addresses and ranges), never both."""

    hops: int = 0
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, value: object, setting: str = "trusted_proxies") -> TrustedProxies | None:
        """From an int (hops), or a list/comma-separated string of addresses and CIDRs."""
        if value is None or value is False:
            return None
        if isinstance(value, bool):
            raise ConfigurationError(
                f"{setting} must be a number of hops or a list of addresses/CIDR ranges, "
                f"got {value!r}"
            )
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            hops = int(value)
            if not 1 <= hops <= _MAX_HOPS:
                raise ConfigurationError(
                    f"{setting} as a hop count must be between 1 and {_MAX_HOPS}, got {value!r}"
                )
            return cls(hops=hops)
        items: Iterable[object]
        if isinstance(value, str):
            items = [part for part in value.split(",") if part.strip()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = value
        else:
            raise ConfigurationError(
                f"{setting} must be a number of hops or a list of addresses/CIDR ranges, "
                f"got {value!r}"
            )
        networks = []
        for item in items:
            if not isinstance(item, str):
                raise ConfigurationError(
                    f"{setting} entries must be addresses or CIDR ranges as strings, got {item!r}"
                )
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"{setting}: {item!r} is not an IP address or CIDR range ({exc})"
                ) from exc
        if not networks:
            raise ConfigurationError(f"{setting} must name at least one address, got {value!r}")
        return cls(networks=tuple(networks))

    def trusts(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(_strip_port(address))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def apply(self, view: RequestView) -> None:
        """Replace the view's client address, scheme and host with what trusted proxies
        report; leave them as they are when the request did not come through one."""
        if view.forwarded:
            entries = _parse_forwarded(view.forwarded)
            fors = [entry.get("for", "") for entry in entries]
            nearest = entries[-1] if entries else {}
            proto, host = nearest.get("proto"), nearest.get("host")
        elif view.forwarded_for:
            fors = [part.strip() for part in view.forwarded_for.split(",")[-_MAX_HOPS:]]
            proto = _last(view.forwarded_proto)
            host = _last(view.forwarded_host)
        else:
            return
        peer = view.client_addr
        if self.hops:
            if len(fors) < self.hops:
                throttled.warning(
                    "proxies-short",
                    "td_web: trusted_proxies=%d but the request carries only %d forwarded "
                    "address(es); its forwarded headers were ignored. Set trusted_proxies to the "
                    "number of proxies in front of the app.",
                    self.hops,
                    len(fors),
                )
                return
            client = fors[-self.hops]
        else:
            if not self.trusts(peer):
                throttled.warning(
                    "proxies-untrusted",
                    "td_web: forwarded headers from %s ignored: that peer is not in "
                    "trusted_proxies. Add it there if it is your proxy.",
                    peer,
                )
                return
            client = next((hop for hop in reversed(fors) if not self.trusts(hop)), fors[0])
        client = _strip_port(client)
        try:
            ipaddress.ip_address(client)
        except ValueError:
            throttled.warning(
                "proxies-junk",
                "td_web: the forwarded client address %r is not an IP address; ignored. "
                "Check what your proxy writes into that header.",
                client[:60],
            )
        else:
            view.client_addr = client
        if proto and proto.lower() in ("http", "https"):
            view.scheme = proto.lower()
        if host and _HOST.match(host):
            view.host = host


def _last(header: str | None) -> str | None:
    if not header:
        return None
    return header.rsplit(",", 1)[-1].strip() or None


def _strip_port(address: str) -> str:
    """``1.2.3.4:5678`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; a bare IPv6 stays."""
    address = address.strip().strip('"')
    if address.startswith("["):
        return address[1:].partition("]")[0]
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address


def _parse_forwarded(header: str) -> list[dict[str, str]]:
    """RFC 7239 elements as dicts of lower-cased parameter names (unquoted values)."""
    entries = []
    for element in header.split(",")[-_MAX_HOPS:]:
        entry: dict[str, str] = {}
        for pair in element.split(";"):
            name, equals, value = pair.partition("=")
            if equals:
                entry[name.strip().lower()] = value.strip().strip('"')
        entries.append(entry)
    return entries
