"""TelemetryDeck analytics for Flask: the ``TelemetryDeck`` extension.

::

    from td_web.flask import TelemetryDeck

    td = TelemetryDeck()
    td.init_app(app)

    @app.post("/checkout")
    def checkout():
        request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)

``request.telemetry`` is set on Flask's request object before any other ``before_request``
function runs; type checkers learn of it through :class:`TelemetryRequest`
(``cast("TelemetryRequest", request).telemetry``), or use ``td_web.current()``.
"""

from __future__ import annotations

from typing import Protocol

from .._web import Telemetry
from .extension import EXTENSION_KEY, TelemetryDeck
from .state import AppTelemetry

__all__ = ["EXTENSION_KEY", "AppTelemetry", "TelemetryDeck", "TelemetryRequest"]


class TelemetryRequest(Protocol):
    """What td_web adds to Flask's request, for type checkers."""

    telemetry: Telemetry
