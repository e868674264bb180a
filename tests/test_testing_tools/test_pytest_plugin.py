"""The ``td_signals`` fixture, used the way an application's own test suite uses it: a separate
test project run by pytest, with the plugin found through its entry point."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

APP_TESTS = """
from flask import Flask, request

from td_web.flask import TelemetryDeck


def make_app():
    app = Flask(__name__)
    app.config.update(TELEMETRYDECK_APP_ID="B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE",
                      TELEMETRYDECK_ENDPOINT="http://127.0.0.1:9",
                      TELEMETRYDECK_HANDLE_SIGTERM=False)
    TelemetryDeck(app)

    @app.post("/checkout/<int:cart_id>")
    def checkout(cart_id):
        request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
        return "<p>thanks</p>"

    return app


def test_checkout_sends_its_signal(td_signals):
    make_app().test_client().post("/checkout/7")
    signal = td_signals.assert_sent("Checkout.completed", Cart__items="3")
    assert signal["payload"]["floatValue"] == 19.99
    request_signal = td_signals.one("HTTP.request")
    assert request_signal["payload"]["HTTP.route"] == "/checkout/{cart_id}"
    assert td_signals.types() == [
        "Checkout.completed", "TelemetryDeck.Session.started", "HTTP.request"
    ]


def test_each_test_starts_empty(td_signals):
    assert td_signals.types() == []


def test_a_wrong_expectation_fails_with_what_was_captured(td_signals):
    make_app().test_client().post("/checkout/1")
    td_signals.one("pageView")
"""


def test_the_fixture_in_an_application_test_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=APP_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*expected exactly one 'pageView' signal, got 0; captured types: *HTTP.request*"]
    )
