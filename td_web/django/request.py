"""``TelemetryHttpRequest``: an ``HttpRequest`` annotation that knows ``request.telemetry``.

::

    from django.http import HttpResponse
    from td_web.django import TelemetryHttpRequest

    def checkout(request: TelemetryHttpRequest) -> HttpResponse:
        request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
        ...

Django never instantiates it: it only tells type checkers what the middleware attaches.
"""

from __future__ import annotations

from django.http import HttpRequest

from .._web import Telemetry


class TelemetryHttpRequest(HttpRequest):
    #: Set by ``TelemetryDeckMiddleware`` on every request (sends nothing when untracked).
    telemetry: Telemetry
