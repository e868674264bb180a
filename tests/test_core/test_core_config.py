from __future__ import annotations

import pytest
from conftest import APP_ID

from td_web import ConfigurationError, TelemetryDeck
from td_web._config import build_config


def test_missing_app_id_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEMETRYDECK_APP_ID", raising=False)
    with pytest.raises(ConfigurationError, match="TELEMETRYDECK_APP_ID"):
        TelemetryDeck()
    with pytest.raises(ConfigurationError, match="app_id"):
        TelemetryDeck(app_id="  ")


def test_environment_supplies_every_documented_option() -> None:
    env = {
        "TELEMETRYDECK_APP_ID": APP_ID,
        "TELEMETRYDECK_SALT": "pepper",
        "TELEMETRYDECK_ENDPOINT": "http://127.0.0.1:9/",
        "TELEMETRYDECK_NAMESPACE": "com.example",
        "TELEMETRYDECK_TEST_MODE": "yes",
        "TELEMETRYDECK_ENABLED": "off",
    }
    config = build_config({}, environ=env)
    assert config.app_id == APP_ID
    assert config.salt == "pepper"
    assert config.ingest_url == "http://127.0.0.1:9/v2/namespace/com.example/"
    assert config.test_mode is True
    assert config.enabled is False


def test_explicit_argument_wins_over_environment_and_fallbacks() -> None:
    env = {"TELEMETRYDECK_APP_ID": "from-env", "TELEMETRYDECK_TEST_MODE": "false"}
    config = build_config({"app_id": APP_ID}, {"test_mode": True}, environ=env)
    assert config.app_id == APP_ID
    assert config.test_mode is False  # the environment beats an adapter's fallback
    assert build_config({"app_id": APP_ID}, {"test_mode": True}, environ={}).test_mode is True


def test_bad_values_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"TELEMETRYDECK_TEST_MODE.*'maybe'"):
        build_config({"app_id": APP_ID}, environ={"TELEMETRYDECK_TEST_MODE": "maybe"})
    with pytest.raises(ConfigurationError, match="endpoint"):
        build_config({"app_id": APP_ID, "endpoint": "nom.telemetrydeck.com"}, environ={})
    with pytest.raises(ConfigurationError, match="namespace"):
        build_config({"app_id": APP_ID, "namespace": "com example"}, environ={})
    with pytest.raises(ConfigurationError, match="max_batch_size"):
        build_config({"app_id": APP_ID, "max_batch_size": 0}, environ={})
    with pytest.raises(ConfigurationError, match=r"unknown td_web option.*flush_intervall"):
        build_config({"app_id": APP_ID, "flush_intervall": 1}, environ={})


def test_default_endpoint_and_url() -> None:
    config = build_config({"app_id": APP_ID}, environ={})
    assert config.ingest_url == "https://nom.telemetrydeck.com/v2/"


def test_malformed_app_id_warns(caplog: pytest.LogCaptureFixture) -> None:
    TelemetryDeck(app_id="not-a-uuid", enabled=True, endpoint="http://127.0.0.1:9").close(0)
    assert "'not-a-uuid' does not look like a TelemetryDeck app id" in caplog.text


def test_disabled_client_accepts_calls_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEMETRYDECK_APP_ID", raising=False)
    td = TelemetryDeck(enabled=False)
    assert td.signal("App.launched") is False
    assert td.flush(timeout=0) is True
    assert td.stats().queued == 0
    td.close()


def test_every_request_option_has_exactly_one_parser() -> None:
    """The option table and WebSettings name the same options: none escapes validation."""
    from dataclasses import fields

    from td_web._options import OPTIONS, WEB
    from td_web._web.settings import WebSettings

    web_rows = {name for name, option in OPTIONS.items() if option.layer == WEB}
    assert web_rows == {field.name for field in fields(WebSettings)}
    assert all(callable(OPTIONS[name].parse) for name in web_rows)
