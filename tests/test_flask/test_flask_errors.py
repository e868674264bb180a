"""Unhandled exceptions: an error signal via got_request_exception; Flask's own handling
(logging, error handlers, the 500 response, propagation in testing) unchanged."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, abort
from werkzeug.exceptions import InternalServerError

from td_web.testing import CapturedSignals

MakeApp = Callable[..., Flask]


class PaymentFailed(Exception):
    pass


def raising_app(make_app: MakeApp, **options: object) -> Flask:
    app = make_app(**options)

    @app.get("/pay/<int:order>")
    def pay(order: int) -> str:
        raise PaymentFailed(f"card declined for order {order}")

    return app


def test_an_unhandled_exception_sends_an_error_and_a_500_request(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = raising_app(make_app)
    response = app.test_client().get("/pay/7")

    assert response.status_code == 500
    assert b"Internal Server Error" in response.data  # Flask's own 500 page
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"].endswith("PaymentFailed")
    assert error["HTTP.route"] == "/pay/{order}"
    assert "TelemetryDeck.Error.message" not in error  # messages may hold personal data
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"


def test_the_apps_500_handler_and_its_response_are_unchanged(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = raising_app(make_app)
    handled: list[BaseException | None] = []

    @app.errorhandler(500)
    def server_error(error: InternalServerError) -> tuple[str, int]:
        handled.append(error.original_exception)
        return "our own apology", 500

    response = app.test_client().get("/pay/7")

    assert (response.status_code, response.text) == (500, "our own apology")
    assert isinstance(handled[0], PaymentFailed)
    td_signals.one("TelemetryDeck.Error.occurred")


def test_flask_still_logs_the_exception(
    make_app: MakeApp, td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    app = raising_app(make_app)
    app.test_client().get("/pay/7")
    assert any(record.exc_info and record.name == app.logger.name for record in caplog.records)


def test_in_testing_mode_the_exception_propagates_unchanged_and_is_recorded(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = raising_app(make_app, testing=True)
    with pytest.raises(PaymentFailed, match="card declined for order 7"):
        app.test_client().get("/pay/7")
    td_signals.one("TelemetryDeck.Error.occurred")
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"


def test_an_exception_the_app_handles_is_not_an_error(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = raising_app(make_app)

    @app.errorhandler(PaymentFailed)
    def declined(error: PaymentFailed) -> tuple[str, int]:
        return "declined", 402

    response = app.test_client().get("/pay/7")
    assert (response.status_code, response.text) == (402, "declined")
    assert td_signals.of_type("TelemetryDeck.Error.occurred") == []
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "402"


def test_http_errors_are_statuses_not_errors(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()

    @app.get("/secret")
    def secret() -> str:
        abort(403)

    assert app.test_client().get("/secret").status_code == 403
    assert td_signals.of_type("TelemetryDeck.Error.occurred") == []
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "403"


def test_error_messages_only_when_asked_for(make_app: MakeApp, td_signals: CapturedSignals) -> None:
    app = raising_app(make_app, send_error_messages=True)
    app.test_client().get("/pay/7")
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.message"] == "card declined for order 7"


def test_an_exception_in_a_before_request_function_is_recorded(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()
    app.add_url_rule("/", "index", lambda: "ok")

    @app.before_request
    def broken() -> None:
        raise PaymentFailed("before the view")

    assert app.test_client().get("/").status_code == 500
    td_signals.one("TelemetryDeck.Error.occurred")
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/"


def test_a_failure_before_any_request_hook_is_still_recorded(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    from flask.sessions import SecureCookieSessionInterface

    class BrokenSessions(SecureCookieSessionInterface):
        def open_session(self, app: Flask, request: object) -> None:  # type: ignore[override]
            raise ConnectionError("the session store is down")

    app = make_app()
    app.session_interface = BrokenSessions()
    app.add_url_rule("/", "index", lambda: "ok")

    assert app.test_client().get("/").status_code == 500
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"] == "ConnectionError"
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"
