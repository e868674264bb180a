"""``flask telemetrydeck check|send``: registered by the extension, reading the app's own
configuration, against the real local ingest server, with exit codes a deploy script can use
(Flask's CliRunner, and the ``flask`` command on the example app in a real subprocess)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import APP_ID
from deploy_commands import check_send_and_fail_like_a_deploy_script
from flask import Flask
from ingest_server import IngestServer, free_port

from td_web import hash_client_user
from td_web.flask import TelemetryDeck

EXAMPLE_APP = Path(__file__).resolve().parents[2] / "example_projects" / "flask_app"


def _app(endpoint: str, **config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TELEMETRYDECK_APP_ID=APP_ID,
        TELEMETRYDECK_ENDPOINT=endpoint,
        TELEMETRYDECK_SALT="flask-salt",
        TELEMETRYDECK_HANDLE_SIGTERM=False,
        **{f"TELEMETRYDECK_{key}": value for key, value in config.items()},
    )
    TelemetryDeck(app)
    return app


def test_check_passes_with_the_apps_configuration(ingest: IngestServer) -> None:
    result = _app(ingest.url).test_cli_runner().invoke(args=["telemetrydeck", "check"])
    assert result.exit_code == 0, result.output
    assert f"ok    app id     {APP_ID}" in result.output
    assert f"{ingest.url}/v2/ answers" in result.output
    assert "configuration looks good" in result.output
    assert ingest.accepted_signals == []


def test_check_fails_for_an_unreachable_endpoint() -> None:
    app = _app(f"http://127.0.0.1:{free_port()}")
    result = app.test_cli_runner().invoke(args=["telemetrydeck", "check", "--timeout", "2"])
    assert result.exit_code == 1
    assert "is not reachable" in result.output


def test_check_warns_when_the_app_disables_td_web(ingest: IngestServer) -> None:
    app = _app(ingest.url, ENABLED=False)
    result = app.test_cli_runner().invoke(args=["telemetrydeck", "check"])
    assert result.exit_code == 0
    assert "warn  enabled    no: this configuration sends nothing" in result.output


def test_init_app_keyword_arguments_are_part_of_the_configuration(ingest: IngestServer) -> None:
    app = Flask(__name__)
    app.config.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_HANDLE_SIGTERM=False)
    TelemetryDeck().init_app(app, endpoint=ingest.url, namespace="com.example")
    result = app.test_cli_runner().invoke(args=["telemetrydeck", "check"])
    assert result.exit_code == 0, result.output
    assert f"{ingest.url}/v2/namespace/com.example/ answers" in result.output


def test_send_delivers_one_signal_with_the_apps_configuration(ingest: IngestServer) -> None:
    runner = _app(ingest.url).test_cli_runner()
    result = runner.invoke(
        args=["telemetrydeck", "send", "Deploy.finished", "release=3.1", "--user", "ops"]
    )
    assert result.exit_code == 0, result.output
    [signal] = ingest.accepted_signals
    assert signal["type"] == "Deploy.finished"
    assert signal["payload"]["release"] == "3.1"
    assert signal["clientUser"] == hash_client_user("ops", "flask-salt")


def test_send_that_is_not_delivered_exits_1() -> None:
    runner = _app(f"http://127.0.0.1:{free_port()}").test_cli_runner()
    result = runner.invoke(args=["telemetrydeck", "send", "Deploy.finished", "--timeout", "2"])
    assert result.exit_code == 1
    assert "not delivered" in result.output


def test_send_rejects_a_payload_entry_without_equals(ingest: IngestServer) -> None:
    runner = _app(ingest.url).test_cli_runner()
    result = runner.invoke(args=["telemetrydeck", "send", "Deploy.finished", "novalue"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output
    assert ingest.accepted_signals == []


@pytest.mark.slow
def test_flask_command_on_the_example_app(ingest: IngestServer) -> None:
    command = [sys.executable, "-m", "flask", "telemetrydeck"]
    check_send_and_fail_like_a_deploy_script(
        command, EXAMPLE_APP, ingest, FLASK_APP="app:create_app"
    )
