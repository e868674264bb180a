"""``settings.TELEMETRYDECK``: every core option, the environment fallback, DEBUG as test mode,
lazy reads under ``override_settings``, and what happens when the settings are wrong."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from ingest_server import IngestServer
from td_django_helpers import APP_ID, telemetry_settings

from td_web import ConfigurationError, TelemetryDeck
from td_web._config import OPTION_NAMES
from td_web._web.settings import WEB_OPTION_NAMES
from td_web.django import TelemetryDeckMiddleware, get_web_telemetry
from td_web.testing import CapturedSignals

OTHER_APP_ID = "0F0E0D0C-0B0A-4909-8807-060504030201"


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "td_web" and r.levelno >= 40]


# -- every option -----------------------------------------------------------------------------


def test_every_core_option_is_accepted_as_an_upper_case_key(td_signals: CapturedSignals) -> None:
    """None means "not given" for every option, so this dict names each one without changing
    any default; an unknown name would make the settings invalid."""
    every_key = {name.upper(): None for name in OPTION_NAMES | WEB_OPTION_NAMES | {"client"}}
    every_key["APP_ID"] = APP_ID
    # The automatic signal types are switched off by None: keep them on.
    for key in ("PAGE_VIEW_SIGNAL", "REQUEST_SIGNAL", "SESSION_STARTED_SIGNAL", "ERROR_SIGNAL"):
        del every_key[key]

    with override_settings(TELEMETRYDECK=every_key):
        Client().get("/")
        web = get_web_telemetry()

    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView"]
    assert web.client.config.app_id == APP_ID


def test_options_take_effect(td_signals: CapturedSignals) -> None:
    with override_settings(
        TELEMETRYDECK=telemetry_settings(
            SESSION_COOKIE_NAME="visit",
            SESSION_COOKIE_MAX_AGE=600,
            PAGE_VIEW_SIGNAL="Web.pageViewed",
            SESSION_STARTED_SIGNAL=None,
            EXCLUDE_PATHS=["/pages/"],
            DEFAULT_PAYLOAD={"Site.edition": "eu"},
            APP_VERSION="2.1.0",
        )
    ):
        response = Client().get("/")
        Client().get("/pages/about/")

    assert td_signals.types() == ["Web.pageViewed"]
    payload = td_signals.one("Web.pageViewed")["payload"]
    assert payload["Site.edition"] == "eu"
    assert payload["TelemetryDeck.AppInfo.version"] == "2.1.0"
    assert "Max-Age=600" in response.cookies["visit"].output()


def test_namespace_and_endpoint_reach_the_ingest_server(ingest: IngestServer) -> None:
    with override_settings(
        TELEMETRYDECK=telemetry_settings(
            ENDPOINT=ingest.url, NAMESPACE="com.example.shop", FLUSH_INTERVAL=0.05
        )
    ):
        Client().get("/")
        signals = ingest.wait_for_signals(2)

    assert {s["type"] for s in signals} == {"TelemetryDeck.Session.started", "pageView"}
    assert ingest.requests[0].path == "/v2/namespace/com.example.shop/"


def test_an_existing_client_is_used_and_never_closed_by_a_settings_change(
    td_signals: CapturedSignals,
) -> None:
    client = TelemetryDeck(app_id=OTHER_APP_ID, endpoint="http://127.0.0.1:9")
    try:
        with override_settings(TELEMETRYDECK={"CLIENT": client, "COOKIELESS": True}):
            Client().get("/")
            assert get_web_telemetry().client is client
        with override_settings(TELEMETRYDECK=telemetry_settings()):
            Client().get("/")

        assert td_signals.of_type("pageView")[0]["appID"] == OTHER_APP_ID
        assert client.signal("Still.open") is True
    finally:
        client.close(0)


def test_client_together_with_client_options_is_invalid() -> None:
    client = TelemetryDeck(enabled=False)
    with (
        override_settings(TELEMETRYDECK={"CLIENT": client, "APP_ID": APP_ID}),
        pytest.raises(ConfigurationError, match="either client"),
    ):
        get_web_telemetry()


# -- the environment --------------------------------------------------------------------------


def test_environment_variables_are_the_fallback(
    td_signals: CapturedSignals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", OTHER_APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_APP_VERSION", "9.9")
    with override_settings(TELEMETRYDECK=telemetry_settings(APP_ID=None)):
        Client().get("/")

    page_view = td_signals.one("pageView")
    assert page_view["appID"] == OTHER_APP_ID
    assert page_view["payload"]["TelemetryDeck.AppInfo.version"] == "9.9"


def test_settings_win_over_the_environment(
    td_signals: CapturedSignals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", OTHER_APP_ID)
    Client().get("/")

    assert td_signals.one("pageView")["appID"] == APP_ID


def test_no_setting_at_all_uses_only_the_environment(
    td_signals: CapturedSignals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", OTHER_APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_ENDPOINT", "http://127.0.0.1:9")
    with override_settings():
        from django.conf import settings

        del settings.TELEMETRYDECK
        Client().get("/")

    assert td_signals.one("pageView")["appID"] == OTHER_APP_ID


# -- test mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False])
def test_test_mode_defaults_to_debug(td_signals: CapturedSignals, debug: bool) -> None:
    with override_settings(DEBUG=debug):
        Client().get("/")

    assert td_signals.one("pageView")["isTestMode"] is debug


def test_explicit_test_mode_wins_over_debug(td_signals: CapturedSignals) -> None:
    with override_settings(DEBUG=True, TELEMETRYDECK=telemetry_settings(TEST_MODE=False)):
        Client().get("/")

    assert td_signals.one("pageView")["isTestMode"] is False


def test_test_mode_variable_wins_over_debug(
    td_signals: CapturedSignals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_TEST_MODE", "0")
    with override_settings(DEBUG=True):
        Client().get("/")

    assert td_signals.one("pageView")["isTestMode"] is False


# -- laziness ---------------------------------------------------------------------------------


def test_override_settings_is_seen_and_undone(td_signals: CapturedSignals) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(PAGE_VIEW_SIGNAL="Overridden.view")):
        Client().get("/")
    Client().get("/")

    assert td_signals.types() == [
        "TelemetryDeck.Session.started",
        "Overridden.view",
        "TelemetryDeck.Session.started",
        "pageView",
    ]


@override_settings(TELEMETRYDECK=telemetry_settings(REQUEST_SIGNAL="Decorated.request"))
def test_override_settings_as_a_decorator(td_signals: CapturedSignals) -> None:
    Client().get("/items/1/")

    assert td_signals.types()[-1] == "Decorated.request"


def test_a_replaced_client_delivers_what_it_held_and_closes(ingest: IngestServer) -> None:
    with override_settings(
        TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url, FLUSH_INTERVAL=3600)
    ):
        Client().get("/")
        replaced = get_web_telemetry().client

    # Leaving override_settings closed the client: its queue went out at once.
    assert len(ingest.accepted_signals) == 2
    assert replaced.signal("After.close") is False


# -- wrong settings ---------------------------------------------------------------------------


def test_unknown_keys_raise_a_configuration_error_naming_them() -> None:
    with (
        override_settings(TELEMETRYDECK=telemetry_settings(APP_IDD="x", app_id="y")),
        pytest.raises(ConfigurationError) as raised,
    ):
        get_web_telemetry()

    message = str(raised.value)
    assert "APP_IDD" in message and "app_id" in message
    assert "did you mean APP_ID" in message


def test_a_setting_that_is_no_dict_is_a_configuration_error() -> None:
    with (
        override_settings(TELEMETRYDECK=[("APP_ID", APP_ID)]),
        pytest.raises(ConfigurationError, match="must be a dict"),
    ):
        get_web_telemetry()


def test_missing_app_id_passes_requests_through_and_logs_once(
    td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(APP_ID=None)):
        responses = [Client().post("/checkout/") for _ in range(3)]
        with pytest.raises(ConfigurationError, match="app id"):
            get_web_telemetry()

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all("td_session" not in r.cookies for r in responses)
    assert td_signals.types() == []
    errors = _errors(caplog)
    assert len(errors) == 1 and "TELEMETRYDECK_APP_ID" in errors[0]


def test_invalid_settings_pass_requests_through(
    td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(UNKNOWN_OPTION=1)):
        first = Client().get("/")
        second = Client().get("/")

    assert (first.status_code, second.status_code) == (200, 200)
    assert td_signals.types() == []
    assert len(_errors(caplog)) == 1


def test_disabled_is_a_no_op(td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(TELEMETRYDECK={"ENABLED": False}):
        response = Client().post("/checkout/")
        web = get_web_telemetry()

    assert response.status_code == 200
    assert "td_session" not in response.cookies
    assert td_signals.types() == []
    assert not web.client.enabled
    # The view's request.telemetry.signal() was dropped quietly: disabled is not a mistake.
    assert not [r for r in caplog.records if r.name == "td_web" and r.levelno >= logging.WARNING]


def test_a_project_without_root_urlconf_is_tracked_without_an_error(
    td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    """ROOT_URLCONF is optional (Django's own test suite runs many tests without one, calling
    middleware directly): td_web reads it with a default and logs nothing about a setting that
    is not its own."""
    with override_settings():
        del settings.ROOT_URLCONF
        middleware = TelemetryDeckMiddleware(lambda request: HttpResponse("<p>hi</p>"))
        response = middleware(RequestFactory().get("/pages/about/"))

    assert response.status_code == 200
    assert td_signals.one("pageView")["payload"]["url"] == "http://testserver/pages/about/"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
