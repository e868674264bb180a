"""td_web for Django.

::

    INSTALLED_APPS += ["td_web.django"]                        # optional: system checks
    MIDDLEWARE.insert(0, "td_web.django.TelemetryDeckMiddleware")
    TELEMETRYDECK = {"APP_ID": "...", "SALT": "..."}           # TELEMETRYDECK_* env vars too

    def checkout(request: TelemetryHttpRequest) -> HttpResponse:
        request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)

``TELEMETRYDECK`` keys are the option names in upper case (``APP_ID``, ``SALT``, ``ENDPOINT``,
``NAMESPACE``, ``TEST_MODE``, ``ENABLED``, ``FLUSH_INTERVAL``, ``SESSION_COOKIE_NAME``,
``EXCLUDE_PATHS``, ..., ``CLIENT``); ``TEST_MODE`` defaults to ``DEBUG``.
"""

from __future__ import annotations

from .middleware import TelemetryDeckMiddleware
from .request import TelemetryHttpRequest
from .runtime import get_web_telemetry

__all__ = ["TelemetryDeckMiddleware", "TelemetryHttpRequest", "get_web_telemetry"]
