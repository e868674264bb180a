"""Country and continent from trusted edge headers and a MaxMind-format database the test
writes itself; a header the app was not told to trust is ignored."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from ingest_server import IngestServer
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from test_dashboard.dashboard_support import dashboard_app, page_views

from td_web import ConfigurationError
from td_web._web.countries import CONTINENT_OF, EUROPEAN_UNION

COUNTRY_KEYS = ("country.isoCode", "country.isInEuropeanUnion", "continent.code")


def country(payload: dict[str, Any]) -> tuple[str | None, ...]:
    return tuple(payload.get(key) for key in COUNTRY_KEYS)


def one_page_view(
    ingest: IngestServer,
    headers: dict[str, str] | None = None,
    addr: str = "127.0.0.1",
    **options: Any,
) -> dict[str, Any]:
    app, flush = dashboard_app(ingest, **options)
    client = app.test_client()
    response = client.get("/", headers=headers or {}, environ_base={"REMOTE_ADDR": addr})
    assert response.status_code == 200
    assert flush()
    (view,) = page_views(ingest)
    return dict(view["payload"])


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small city-style database: two networks in Britain and Brazil, one without a country."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"country": {"iso_code": "GB", "is_in_european_union": False}, "continent": {"code": "EU"}},
    )
    writer.insert_network(IPSet(["200.160.0.0/20"]), {"country": {"iso_code": "BR"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(IPSet(["192.0.2.0/24"]), {"city": {"names": {"en": "Nowhere"}}})
    path = tmp_path_factory.mktemp("geo") / "test-country.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    "header", ["CF-IPCountry", "CloudFront-Viewer-Country", "X-Vercel-IP-Country", "X-My-Country"]
)
def test_country_from_each_trusted_header(ingest: IngestServer, header: str) -> None:
    payload = one_page_view(ingest, {header: "de"}, country_headers=[header])
    assert country(payload) == ("DE", "true", "EU")


def test_country_headers_also_read_from_a_comma_separated_setting(ingest: IngestServer) -> None:
    payload = one_page_view(
        ingest, {"X-Vercel-IP-Country": "JP"}, country_headers="CF-IPCountry, X-Vercel-IP-Country"
    )
    assert country(payload) == ("JP", "false", "AS")


def test_spoofed_header_is_ignored_when_not_trusted(ingest: IngestServer) -> None:
    forged = {"CF-IPCountry": "US", "X-Vercel-IP-Country": "US", "CloudFront-Viewer-Country": "US"}
    payload = one_page_view(ingest, forged)
    assert country(payload) == (None, None, None)


def test_only_the_configured_header_is_trusted(ingest: IngestServer) -> None:
    payload = one_page_view(
        ingest,
        {"X-Vercel-IP-Country": "US", "CF-IPCountry": "FR"},
        country_headers=["CF-IPCountry"],
    )
    assert country(payload) == ("FR", "true", "EU")


def test_headers_are_tried_in_the_users_order(ingest: IngestServer) -> None:
    headers = {"CF-IPCountry": "XX", "X-Vercel-IP-Country": "CA", "X-Other": "MX"}
    payload = one_page_view(
        ingest, headers, country_headers=["CF-IPCountry", "X-Vercel-IP-Country", "X-Other"]
    )
    assert country(payload) == ("CA", "false", "NA")


@pytest.mark.parametrize(
    "value", ["XX", "T1", "ZZ", "EU", "D", "DEU", "<b>", "d e", "\u00e9\u00e9", "DE" * 500]
)
def test_unknown_and_malformed_codes_give_no_country(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    payload = one_page_view(
        ingest,
        {"CF-IPCountry": value.encode("utf-8").decode("latin-1")},
        country_headers=["CF-IPCountry"],
    )
    assert country(payload) == (None, None, None)
    # At most one (throttled) warning about the header; other senders' delivery warnings
    # (an earlier test's ingest gone) are not this test's business.
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "country" in r.getMessage()
    ]
    assert len(warnings) <= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_country_from_the_database(ingest: IngestServer, database: Path) -> None:
    payload = one_page_view(ingest, addr="81.2.69.160", geoip_database=str(database))
    assert country(payload) == ("GB", "false", "EU")
    assert "81.2.69.160" not in str(ingest.requests[0].raw)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("200.160.2.3", ("BR", "false", "SA")),
        ("2001:db8::1", ("DE", "true", "EU")),
        ("192.0.2.1", (None, None, None)),  # a record without a country
        ("10.0.0.1", (None, None, None)),  # not in the database
        ("not-an-address", (None, None, None)),
    ],
)
def test_database_lookups(
    ingest: IngestServer, database: Path, addr: str, expected: tuple[str | None, ...]
) -> None:
    payload = one_page_view(ingest, addr=addr, geoip_database=database)
    assert country(payload) == expected


def test_a_trusted_header_wins_over_the_database(ingest: IngestServer, database: Path) -> None:
    payload = one_page_view(
        ingest,
        {"CF-IPCountry": "NZ"},
        addr="81.2.69.160",
        country_headers=["CF-IPCountry"],
        geoip_database=str(database),
    )
    assert country(payload) == ("NZ", "false", "OC")


def test_country_table_covers_every_code_once() -> None:
    assert len(CONTINENT_OF) == 250  # ISO 3166-1's 249 and Kosovo's XK
    assert (
        len(EUROPEAN_UNION) == 27
        and {code for code, continent in CONTINENT_OF.items() if continent == "EU"}
        >= EUROPEAN_UNION
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"geoip_database": "/nonexistent/GeoLite2-Country.mmdb"}, "geoip_database"),
        ({"geoip_database": 42}, "geoip_database"),
        ({"country_headers": ["CF IPCountry"]}, "country_headers"),
        ({"country_headers": 7}, "country_headers"),
    ],
)
def test_bad_geo_settings_fail_at_start_up(
    ingest: IngestServer, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        dashboard_app(ingest, **options)


def test_a_file_that_is_no_database_fails_at_start_up(ingest: IngestServer, tmp_path: Path) -> None:
    path = tmp_path / "not.mmdb"
    path.write_bytes(b"this is not a MaxMind database" * 10)
    with pytest.raises(ConfigurationError, match="geoip_database"):
        dashboard_app(ingest, geoip_database=str(path))
