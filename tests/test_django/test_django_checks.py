"""System checks, through Django's check framework, with their stable ids."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from td_django_helpers import MIDDLEWARE, TELEMETRYDECK, telemetry_settings

from td_web import TelemetryDeck
from td_web.django.checks import check_middleware, check_settings


def _ids() -> list[str]:
    return [message.id for message in run_checks() if (message.id or "").startswith("td_web.")]


def test_app_config_has_the_label_td_web() -> None:
    config = apps.get_app_config("td_web")

    assert config.name == "td_web.django"


def test_a_good_configuration_passes() -> None:
    assert _ids() == []
    call_command("check", verbosity=0)


def test_e001_missing_app_id() -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(APP_ID=None)):
        [message] = check_settings()
        assert _ids() == ["td_web.E001"]
        with pytest.raises(SystemCheckError, match=r"td_web\.E001"):
            call_command("check", verbosity=0)

    assert message.id == "td_web.E001"
    assert message.hint is not None and "TELEMETRYDECK_APP_ID" in message.hint


def test_e001_is_satisfied_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", TELEMETRYDECK["APP_ID"])
    with override_settings(TELEMETRYDECK=telemetry_settings(APP_ID=None)):
        assert check_settings() == []


@pytest.mark.parametrize(
    "telemetrydeck",
    [{"ENABLED": False}, {"APP_ID": None, "ENABLED": "false"}],
)
def test_no_app_id_needed_when_disabled(telemetrydeck: dict[str, object]) -> None:
    with override_settings(TELEMETRYDECK=telemetrydeck):
        assert check_settings() == []


def test_e002_unknown_keys() -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(FLUSH_INTERVALL=1, salt="x")):
        [message] = check_settings()

    assert message.id == "td_web.E002"
    assert "FLUSH_INTERVALL" in message.msg and "did you mean SALT" in message.msg


def test_e002_not_a_dict() -> None:
    with override_settings(TELEMETRYDECK="B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE"):
        [message] = check_settings()

    assert message.id == "td_web.E002"


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("ENDPOINT", "ftp://ingest.example", "endpoint"),
        ("FLUSH_INTERVAL", -1, "flush_interval"),
        ("SESSION_COOKIE_SAMESITE", "sometimes", "session_cookie_samesite"),
        ("EXCLUDE_PATTERNS", ["(unclosed"], "exclude_patterns"),
        ("NAMESPACE", "not a namespace!", "namespace"),
    ],
)
def test_e003_invalid_values(key: str, value: object, named: str) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(**{key: value})):
        [message] = check_settings()

    assert message.id == "td_web.E003"
    assert named in message.msg


def test_e003_invalid_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMETRYDECK_TEST_MODE", "perhaps")
    [message] = check_settings()

    assert message.id == "td_web.E003"
    assert "TELEMETRYDECK_TEST_MODE" in message.msg


def test_w001_malformed_app_id() -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(APP_ID="my-app")):
        [message] = check_settings()

    assert message.id == "td_web.W001"
    assert "'my-app'" in message.msg


def test_w002_middleware_after_an_answering_middleware() -> None:
    late = [*MIDDLEWARE[1:3], MIDDLEWARE[0], *MIDDLEWARE[3:]]  # after CommonMiddleware
    with override_settings(MIDDLEWARE=late):
        [message] = check_middleware()
        assert "td_web.W002" in _ids()

    assert "django.middleware.common.CommonMiddleware" in message.msg


def test_w002_not_raised_after_security_and_session_middleware() -> None:
    fine = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "td_web.django.middleware.TelemetryDeckMiddleware",
        *MIDDLEWARE[2:],
    ]
    with override_settings(MIDDLEWARE=fine):
        assert check_middleware() == []


def test_w003_middleware_missing() -> None:
    with override_settings(MIDDLEWARE=MIDDLEWARE[1:]):
        [message] = check_middleware()

    assert message.id == "td_web.W003"


def test_a_subclass_of_the_middleware_counts() -> None:
    with override_settings(MIDDLEWARE=["td_django_testsite.middleware.CustomTelemetry"]):
        assert check_middleware() == []


def test_e003_one_error_for_each_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each setting is checked by its own parser: every bad one is reported, not the first."""
    monkeypatch.setenv("TELEMETRYDECK_TEST_MODE", "perhaps")
    bad = telemetry_settings(FLUSH_INTERVAL=-1, SESSION_COOKIE_SAMESITE="sometimes")
    with override_settings(TELEMETRYDECK=bad):
        messages = check_settings()

    assert [message.id for message in messages] == ["td_web.E003"] * 3
    text = "\n".join(message.msg for message in messages)
    for named in ("TELEMETRYDECK_TEST_MODE", "flush_interval", "session_cookie_samesite"):
        assert named in text


def test_e003_cookie_names_that_collide() -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(SESSION_COOKIE_NAME="td_consent")):
        [message] = check_settings()

    assert message.id == "td_web.E003"
    assert "consent_cookie_name and session_cookie_name" in message.msg


def test_e003_a_client_and_client_options_together() -> None:
    client = TelemetryDeck(app_id=TELEMETRYDECK["APP_ID"], enabled=False)
    try:
        with override_settings(TELEMETRYDECK={"CLIENT": client, "FLUSH_INTERVAL": 1}):
            [message] = check_settings()
        with override_settings(TELEMETRYDECK={"CLIENT": client, "SAMPLE_RATE": 0.5}):
            assert check_settings() == []
    finally:
        client.close(0)

    assert message.id == "td_web.E003"
    assert "pass either client= or client options (flush_interval)" in message.msg
