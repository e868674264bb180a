"""Country and continent of a request, from edge headers the user trusts or a local database.

Nothing here sends or keeps the client's address: the headers' values and the address are read
on the sender thread, turned into ``country.isoCode``, ``country.isInEuropeanUnion`` and
``continent.code``, and dropped. Codes that name no country (``XX`` unknown, ``T1`` Tor, ``EU``,
anything malformed) give no keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._config import ConfigurationError
from .._log import logger, throttled
from .countries import CONTINENT_OF, EUROPEAN_UNION

_NO_KEYS: Mapping[str, str] = {}


def country_keys(code: str) -> Mapping[str, str]:
    """The three keys for an ISO 3166-1 alpha-2 code; none for an unknown or malformed one."""
    code = code.strip().upper()
    continent = CONTINENT_OF.get(code)
    if continent is None:
        return _NO_KEYS
    return {
        "country.isoCode": code,
        "country.isInEuropeanUnion": "true" if code in EUROPEAN_UNION else "false",
        "continent.code": continent,
    }


class Geo:
    """Where a request's country comes from: trusted headers first, then the database."""

    def __init__(self, header_names: tuple[str, ...], database: str | None) -> None:
        self.header_names = header_names
        #: The same names as WSGI environ / Django META keys and as ASGI header names.
        self.environ_keys = tuple("HTTP_" + n.upper().replace("-", "_") for n in header_names)
        self.asgi_names = tuple(n.lower().encode("latin-1") for n in header_names)
        self._database = database
        self._reader: Any = _open_database(database) if database else None

    @property
    def enabled(self) -> bool:
        return bool(self.header_names) or self._reader is not None

    def keys(
        self, header_values: tuple[str | None, ...], client_addr: str | None
    ) -> Mapping[str, str]:
        """The country keys of one request; empty when no source knows. Never raises."""
        for name, value in zip(self.header_names, header_values, strict=False):
            if not value:
                continue
            keys = country_keys(value[:8])
            if keys:
                return keys
            if value.strip().upper() not in ("XX", "T1"):
                throttled.warning(
                    f"country-header|{name}",
                    "td_web: header %s holds %r, not a country code; sent without a country. "
                    "Remove it from country_headers unless your proxy or CDN sets it.",
                    name,
                    value[:40],
                )
        if self._reader is not None and client_addr:
            return self._database_keys(client_addr)
        return _NO_KEYS

    def _database_keys(self, client_addr: str) -> Mapping[str, str]:
        try:
            record = self._reader.get(client_addr)
        except ValueError:  # not an IP address (a Unix socket path, a test client's name)
            return _NO_KEYS
        except Exception:
            logger.exception("td_web: looking the client up in geoip_database failed")
            return _NO_KEYS
        if not isinstance(record, Mapping):
            return _NO_KEYS
        country = record.get("country") or record.get("registered_country")
        code = country.get("iso_code") if isinstance(country, Mapping) else None
        return country_keys(code) if isinstance(code, str) else _NO_KEYS


def _open_database(path: str) -> Any:
    try:
        import maxminddb
    except ImportError as exc:
        raise ConfigurationError(
            "geoip_database needs the maxminddb package: pip install 'td_web[geoip]'"
        ) from exc
    try:
        return maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigurationError(
            f"geoip_database {path!r} is not a MaxMind-format database ({exc})"
        ) from exc
