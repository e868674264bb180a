"""Exceptions: recorded through ``process_exception``; the 500 response and Django's own error
handling (logging, ``got_request_exception``, the test client re-raising) are unchanged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.signals import got_request_exception
from django.test import AsyncClient, Client, override_settings
from td_django_helpers import MIDDLEWARE, telemetry_settings
from td_django_testsite.views import CheckoutFailed

from td_web.testing import CapturedSignals


def test_view_exception_sends_an_error_and_a_500(td_signals: CapturedSignals) -> None:
    response = Client(raise_request_exception=False).get("/boom/")

    assert response.status_code == 500
    assert td_signals.types() == [
        "TelemetryDeck.Session.started",
        "TelemetryDeck.Error.occurred",
        "HTTP.request",
    ]
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"] == "td_django_testsite.views.CheckoutFailed"
    assert error["TelemetryDeck.Error.category"] == "thrown-exception"
    assert error["HTTP.route"] == "/boom/"
    # The message may hold personal data: it is only sent when asked for.
    assert "TelemetryDeck.Error.message" not in error
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"


def test_the_500_response_is_djangos_own(td_signals: CapturedSignals) -> None:
    with_td_web = Client(raise_request_exception=False).get("/boom/")
    with override_settings(MIDDLEWARE=MIDDLEWARE[1:]):
        without = Client(raise_request_exception=False).get("/boom/")

    assert with_td_web.status_code == without.status_code == 500
    assert with_td_web.content == without.content
    assert with_td_web["Content-Type"] == without["Content-Type"]


def test_djangos_error_handling_still_runs(
    td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[Any] = []

    def receiver(sender: Any, request: Any, **kwargs: Any) -> None:
        received.append(request.path)

    got_request_exception.connect(receiver)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="django.request"),
            pytest.raises(CheckoutFailed, match="card declined"),
        ):
            Client().get("/boom/")  # the test client re-raises the view's own exception
    finally:
        got_request_exception.disconnect(receiver)

    assert received == ["/boom/"]
    assert any(r.name == "django.request" and r.status_code == 500 for r in caplog.records)  # type: ignore[attr-defined]
    assert "TelemetryDeck.Error.occurred" in td_signals.types()


def test_error_messages_are_sent_when_enabled(td_signals: CapturedSignals) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(SEND_ERROR_MESSAGES=True)):
        Client(raise_request_exception=False).get("/boom/")

    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.message"] == "card declined for alice@example.com"


async def test_async_view_exception(td_signals: CapturedSignals) -> None:
    response = await AsyncClient(raise_request_exception=False).get("/async/boom/")

    assert response.status_code == 500
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"].endswith("CheckoutFailed")
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"


@pytest.mark.parametrize(("path", "status"), [("/missing/1/", 404), ("/forbidden/", 403)])
def test_exceptions_django_answers_with_4xx_are_no_errors(
    td_signals: CapturedSignals, path: str, status: int
) -> None:
    response = Client().get(path)

    assert response.status_code == status
    assert "TelemetryDeck.Error.occurred" not in td_signals.types()
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == str(status)


def test_propagated_exception_is_recorded_and_reraised(td_signals: CapturedSignals) -> None:
    with (
        override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True),
        pytest.raises(CheckoutFailed),
    ):
        Client().get("/boom/")

    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/boom/"
    assert len(td_signals.of_type("TelemetryDeck.Error.occurred")) == 1


def test_a_failing_telemetry_never_breaks_the_request(
    td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from td_web.django import middleware

    def broken(request: Any) -> Any:
        raise RuntimeError("bug in td_web")

    monkeypatch.setattr(middleware, "request_view", broken)
    response = Client().post("/checkout/")

    assert response.status_code == 200
    assert "td_session" not in response.cookies
    # No automatic signals for the request, but the view's own signal is not lost.
    assert td_signals.types() == ["Checkout.completed"]
    assert any("starting request telemetry failed" in r.getMessage() for r in caplog.records)
