from __future__ import annotations

from td_web.django import TelemetryDeckMiddleware


class CustomTelemetry(TelemetryDeckMiddleware):
    """A project's own subclass, as the system checks must recognise it."""
