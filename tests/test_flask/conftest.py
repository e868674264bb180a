from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import APP_ID  # the suite's tests/conftest.py
from flask import Flask

from td_web.flask import TelemetryDeck

MakeApp = Callable[..., Flask]


@pytest.fixture
def td() -> TelemetryDeck:
    return TelemetryDeck()


@pytest.fixture
def make_app(td: TelemetryDeck) -> MakeApp:
    """An app factory: ``make_app(**config)`` with td_web initialised (config keys without
    the ``TELEMETRYDECK_`` prefix, lower case, as keyword arguments to init_app)."""

    def factory(
        *,
        testing: bool = False,
        init: bool = True,
        subdomain_matching: bool = False,
        **options: Any,
    ) -> Flask:
        app = Flask(__name__, subdomain_matching=subdomain_matching)
        app.config["TESTING"] = testing
        app.config["SECRET_KEY"] = "test"
        app.config["TELEMETRYDECK_APP_ID"] = APP_ID
        app.config["TELEMETRYDECK_HANDLE_SIGTERM"] = False
        if init:
            td.init_app(app, **options)
        return app

    return factory
