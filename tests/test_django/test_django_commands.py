"""``python manage.py telemetrydeck check|send``: the project's own settings, the real local
ingest server, and exit codes a deploy script can use (call_command, and manage.py of the
example site in a real subprocess)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from deploy_commands import check_send_and_fail_like_a_deploy_script
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from ingest_server import IngestServer, free_port
from td_django_helpers import APP_ID, SALT, telemetry_settings

from td_web import hash_client_user

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "example_projects" / "django_site"


def _run(*arguments: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("telemetrydeck", *arguments, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_check_passes_with_the_projects_settings(ingest: IngestServer) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url)):
        code, out, _ = _run("check")
    assert code == 0, out
    assert f"ok    app id     {APP_ID}" in out
    assert f"{ingest.url}/v2/ answers" in out
    assert "configuration looks good" in out
    assert ingest.accepted_signals == []  # a check sends nothing


def test_check_fails_without_an_app_id_and_says_where_to_set_it(ingest: IngestServer) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url, APP_ID=None)):
        code, out, _ = _run("check")
    assert code == 1
    assert "FAIL  app id     missing: set TELEMETRYDECK['APP_ID'] in settings.py" in out
    assert "1 check(s) failed" in out


def test_check_fails_for_an_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with override_settings(TELEMETRYDECK=telemetry_settings(ENDPOINT=endpoint)):
        code, out, _ = _run("check", "--timeout", "2")
    assert code == 1
    assert "is not reachable" in out


def test_check_warns_when_the_settings_disable_td_web(ingest: IngestServer) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url, ENABLED=False)):
        code, out, _ = _run("check")
    assert code == 0
    assert "warn  enabled    no: this configuration sends nothing" in out


def test_send_delivers_one_signal_with_the_projects_settings(ingest: IngestServer) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url)):
        code, out, _ = _run("send", "Deploy.finished", "release=1.4.2", "--user", "ops")
    assert code == 0
    assert "delivered" in out
    [signal] = ingest.accepted_signals
    assert signal["type"] == "Deploy.finished"
    assert signal["appID"] == APP_ID
    assert signal["payload"]["release"] == "1.4.2"
    assert signal["clientUser"] == hash_client_user("ops", SALT)  # the settings' salt
    assert signal["isTestMode"] is False  # DEBUG is False in these settings


def test_send_follows_debug_as_test_mode_like_the_middleware(ingest: IngestServer) -> None:
    with override_settings(DEBUG=True, TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url)):
        assert _run("send", "Deploy.finished")[0] == 0
    assert ingest.accepted_signals[0]["isTestMode"] is True


def test_send_that_is_not_delivered_exits_1() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with override_settings(TELEMETRYDECK=telemetry_settings(ENDPOINT=endpoint)):
        code, _, err = _run("send", "Deploy.finished", "--timeout", "2")
    assert code == 1
    assert "not delivered" in err


def test_invalid_settings_exit_2_naming_the_key() -> None:
    with override_settings(TELEMETRYDECK={**telemetry_settings(), "APPID": APP_ID}):
        code, _, _ = _run("check")
    assert code == 2


@pytest.mark.slow
def test_manage_py_of_the_example_site(ingest: IngestServer) -> None:
    command = [sys.executable, "manage.py", "telemetrydeck"]
    check_send_and_fail_like_a_deploy_script(command, EXAMPLE_SITE, ingest)


def test_check_names_each_bad_setting_of_the_middleware(ingest: IngestServer) -> None:
    settings = telemetry_settings(ENDPOINT=ingest.url, SAMPLE_RATE=5, EXCLUDE_STATUS=["abc"])
    with override_settings(TELEMETRYDECK=settings):
        code, out, _ = _run("check")
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 2, out
    assert any("sample_rate" in line and "5" in line for line in failures), out
    assert any("exclude_status" in line and "abc" in line for line in failures), out
    assert "2 check(s) failed" in out
