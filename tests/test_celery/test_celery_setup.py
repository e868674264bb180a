"""td_web.celery.setup()'s own checks, before any broker or worker is involved."""

from __future__ import annotations

import pytest
from celery import Celery

import td_web.celery
from td_web import ConfigurationError, TelemetryDeck


def test_setup_takes_a_client_or_client_options_not_both() -> None:
    app = Celery("setup-check")
    with pytest.raises(
        ConfigurationError, match=r"client must be a td_web\.TelemetryDeck, got object"
    ):
        td_web.celery.setup(app, client=object())
    with TelemetryDeck(enabled=False) as client:
        with pytest.raises(
            ConfigurationError, match=r"pass either client= or client options \(salt\), not both"
        ):
            td_web.celery.setup(app, client=client, salt="pepper")
        telemetry = td_web.celery.setup(app, client=client)
        telemetry.disconnect()
