"""Purchase, duration and error presets (request helper and bare client), calendar and run
context keys, traffic sources: what arrives at the real local ingest server."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer
from test_dashboard.dashboard_support import dashboard_app

from td_web import ConfigurationError, SignalError, TelemetryDeck
from td_web._calendar import CalendarKeys, calendar_keys

CAL = "TelemetryDeck.Calendar."


@pytest.fixture
def bare(ingest: IngestServer) -> Iterator[TelemetryDeck]:
    client = TelemetryDeck(APP_ID, salt="s", endpoint=ingest.url, flush_interval=3600)
    yield client
    client.close(1)


def by_type(ingest: IngestServer, signal_type: str) -> dict[str, Any]:
    (signal,) = [s for s in ingest.accepted_signals if s["type"] == signal_type]
    return signal


def test_request_presets_at_the_ingest_server(ingest: IngestServer) -> None:
    app, flush = dashboard_app(ingest)
    assert app.test_client().post("/buy").status_code == 200
    assert flush()
    purchase = by_type(ingest, "TelemetryDeck.Purchase.completed")
    assert purchase["floatValue"] == purchase["payload"]["floatValue"] == 12.5
    assert {
        k: v for k, v in purchase["payload"].items() if k.startswith("TelemetryDeck.Purchase")
    } == {
        "TelemetryDeck.Purchase.type": "one-time-purchase",
        "TelemetryDeck.Purchase.countryCode": "DE",
        "TelemetryDeck.Purchase.currencyCode": "EUR",
        "TelemetryDeck.Purchase.productID": "pro-plan",
    }
    report = by_type(ingest, "Report.generated")
    seconds = report["payload"]["TelemetryDeck.Signal.durationInSeconds"]
    assert re.fullmatch(r"\d+\.\d{3}", seconds)
    assert report["floatValue"] == report["payload"]["floatValue"]
    assert abs(report["floatValue"] - float(seconds)) < 0.001
    assert report["payload"]["Report.kind"] == "monthly"
    error = by_type(ingest, "TelemetryDeck.Error.occurred")
    assert error["payload"]["TelemetryDeck.Error.id"] == "Form.emailInvalid"
    assert error["payload"]["TelemetryDeck.Error.category"] == "user-input"
    assert "TelemetryDeck.Error.message" not in error["payload"]
    # All three carry the request's session.
    assert purchase["sessionID"] == report["sessionID"] == error["sessionID"]


def test_bad_preset_input_is_a_warning_and_the_signal_still_goes(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, flush = dashboard_app(ingest)
    response = app.test_client().post("/buy?type=lifetime&category=oops")
    assert response.status_code == 200
    assert flush()
    purchase = by_type(ingest, "TelemetryDeck.Purchase.completed")
    assert "TelemetryDeck.Purchase.type" not in purchase["payload"]
    assert purchase["payload"]["TelemetryDeck.Purchase.productID"] == "pro-plan"
    error = by_type(ingest, "TelemetryDeck.Error.occurred")
    assert "TelemetryDeck.Error.category" not in error["payload"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'lifetime'" in m and "Purchase.type" in m for m in messages)
    assert any("'oops'" in m and "category" in m for m in messages)


def test_bare_client_presets(ingest: IngestServer, bare: TelemetryDeck) -> None:
    assert bare.purchase("9.99", purchase_type="subscription", currency_code="usd")
    with bare.duration("Import.finished") as timer:
        pass
    assert timer.seconds is not None
    assert bare.error("Cache.stale", category="app-state", message="entry older than a day")
    with pytest.raises(KeyError), bare.duration("Never.sent"):
        raise KeyError("the block failed")
    assert bare.flush(30)
    purchase = by_type(ingest, "TelemetryDeck.Purchase.completed")
    assert purchase["floatValue"] == 9.99
    assert purchase["payload"]["TelemetryDeck.Purchase.currencyCode"] == "USD"
    assert by_type(ingest, "Import.finished")["payload"]["TelemetryDeck.Signal.durationInSeconds"]
    error = by_type(ingest, "TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.message"] == "entry older than a day"
    assert not [s for s in ingest.accepted_signals if s["type"] == "Never.sent"]


def test_strict_mode_raises_for_a_bad_category(ingest: IngestServer) -> None:
    client = TelemetryDeck(APP_ID, endpoint=ingest.url, strict=True, flush_interval=3600)
    try:
        with pytest.raises(SignalError, match="category"):
            client.error("X.failed", category="fatal")
    finally:
        client.close(1)


# -- calendar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (
            dt.datetime(2025, 2, 22, 0, 30),
            {"hourOfDay": "1", "dayOfWeek": "6", "isWeekend": "true"},
        ),
        (
            dt.datetime(2025, 2, 24, 23, 59),
            {"hourOfDay": "24", "dayOfWeek": "1", "isWeekend": "false"},
        ),
        (
            dt.datetime(2024, 12, 30, 12, 0),
            {"weekOfYear": "1", "dayOfYear": "365", "quarterOfYear": "4"},
        ),
        (
            dt.datetime(2025, 4, 1, 9, 0),
            {"monthOfYear": "4", "quarterOfYear": "2", "dayOfMonth": "1"},
        ),
    ],
)
def test_calendar_keys(moment: dt.datetime, expected: dict[str, str]) -> None:
    keys = calendar_keys(moment)
    assert {k: keys[CAL + k] for k in expected} == expected


def test_calendar_in_a_configured_time_zone() -> None:
    utc_midnight = dt.datetime(2025, 2, 22, 23, 30, tzinfo=dt.timezone.utc).timestamp()
    in_utc = CalendarKeys("UTC", clock=lambda: utc_midnight)()
    in_tokyo = CalendarKeys("Asia/Tokyo", clock=lambda: utc_midnight)()
    assert in_utc[CAL + "hourOfDay"] == "24" and in_utc[CAL + "dayOfMonth"] == "22"
    assert in_tokyo[CAL + "hourOfDay"] == "9" and in_tokyo[CAL + "dayOfMonth"] == "23"


def test_calendar_and_context_keys_on_every_signal(
    ingest: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_BUILD_NUMBER", "512")
    client = TelemetryDeck(
        APP_ID,
        endpoint=ingest.url,
        app_version="2.4.0",
        environment="production",
        debug=False,
        time_zone="Europe/Berlin",
        flush_interval=3600,
    )
    client.signal("App.started")
    assert client.flush(30)
    client.close(1)
    payload = by_type(ingest, "App.started")["payload"]
    assert 1 <= int(payload[CAL + "hourOfDay"]) <= 24
    assert {key for key in payload if key.startswith(CAL)} == {
        CAL + name
        for name in (
            "dayOfMonth",
            "dayOfWeek",
            "dayOfYear",
            "weekOfYear",
            "isWeekend",
            "monthOfYear",
            "quarterOfYear",
            "hourOfDay",
        )
    }
    assert payload["TelemetryDeck.AppInfo.buildNumber"] == "512"
    assert payload["TelemetryDeck.AppInfo.versionAndBuildNumber"] == "2.4.0 512"
    assert payload["TelemetryDeck.RunContext.targetEnvironment"] == "production"
    assert payload["TelemetryDeck.RunContext.isDebug"] == "false"
    assert payload["TelemetryDeck.SDK.buildType"] == "release"


def test_flask_debug_is_the_fallback_for_is_debug(ingest: IngestServer) -> None:
    app, flush = dashboard_app(ingest, flask_debug=True)
    app.test_client().get("/")
    assert flush()
    payload = by_type(ingest, "pageView")["payload"]
    assert payload["TelemetryDeck.RunContext.isDebug"] == "true"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": 3}, "time_zone"),
        ({"debug": "perhaps"}, "debug"),
        ({"build_number": 7}, "build_number"),
    ],
)
def test_bad_context_options_are_named(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        TelemetryDeck(APP_ID, **options)


# -- traffic sources -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("utm_source=newsletter&src=qr", "newsletter"),
        ("src=qr&source=partner&utm_source=newsletter", "partner"),
        ("utm_source=newsletter&ref=producthunt", "producthunt"),
        ("src=qr", "qr"),
        ("page=2", None),
    ],
)
def test_combined_source(ingest: IngestServer, query: str, expected: str | None) -> None:
    app, flush = dashboard_app(ingest)
    app.test_client().get(f"/?{query}")
    assert flush()
    assert by_type(ingest, "pageView")["payload"].get("combinedSource") == expected


def test_click_ids_only_when_asked_for(ingest: IngestServer) -> None:
    query = "/?gclid=CANARY-gclid-1&msclkid=CANARY-msclkid-2"
    app, flush = dashboard_app(ingest)
    app.test_client().get(query)
    assert flush()
    assert b"CANARY" not in b"".join(request.raw for request in ingest.requests)
    app, flush = dashboard_app(ingest, send_click_ids=True)
    app.test_client().get(query)
    assert flush()
    opted_in = [s for s in ingest.accepted_signals if s["type"] == "pageView"][-1]["payload"]
    assert opted_in["GCLID"] == "CANARY-gclid-1"
    assert opted_in["MSCLKID"] == "CANARY-msclkid-2"
