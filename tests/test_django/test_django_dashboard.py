"""The dashboard options as Django ``TELEMETRYDECK`` keys, through Django's test client."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from td_django_helpers import telemetry_settings

from td_web.testing import CapturedSignals

SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)


def test_country_device_and_visitor_cookie(td_signals: CapturedSignals) -> None:
    with override_settings(
        DEBUG=True,
        TELEMETRYDECK=telemetry_settings(
            COUNTRY_HEADERS=["CF-IPCountry"], VISITOR_COOKIE=True, TIME_ZONE="Europe/Berlin"
        ),
    ):
        response = Client().get(
            "/", HTTP_USER_AGENT=SAFARI_IPAD, HTTP_CF_IPCOUNTRY="at", QUERY_STRING="src=mail"
        )
    assert response.status_code == 200
    assert "td_visitor" in response.cookies
    payload = td_signals.one("pageView")["payload"]
    assert payload["country.isoCode"] == "AT" and payload["country.isInEuropeanUnion"] == "true"
    assert payload["TelemetryDeck.Device.operatingSystem"] == "iPadOS"
    assert payload["isTablet"] == "true"
    assert payload["combinedSource"] == "mail"
    assert payload["TelemetryDeck.RunContext.isDebug"] == "true"
    assert payload["TelemetryDeck.SDK.buildType"] == "debug"
    assert "GCLID" not in payload


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("VISITOR_COOKIE", "sometimes"),
        ("GEOIP_DATABASE", "/no/such.mmdb"),
        ("TIME_ZONE", "Nowhere"),
    ],
)
def test_bad_dashboard_setting_is_named(
    caplog: pytest.LogCaptureFixture, key: str, value: str
) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(**{key: value})):
        assert Client().get("/").status_code == 200
    assert any(
        key.lower() in record.getMessage() and value in record.getMessage()
        for record in caplog.records
        if record.levelname == "ERROR"
    )
