"""td_web: privacy-preserving TelemetryDeck analytics for Python web applications."""

from __future__ import annotations

from ._client import TelemetryDeck
from ._config import ConfigurationError
from ._hashing import hash_client_user
from ._sanitize import SignalError
from ._sender import Stats
from ._version import __version__
from ._web import RequestView, Telemetry, current, opt_in, opt_out
from .jobs import job

__all__ = [
    "ConfigurationError",
    "RequestView",
    "SignalError",
    "Stats",
    "Telemetry",
    "TelemetryDeck",
    "__version__",
    "current",
    "hash_client_user",
    "job",
    "opt_in",
    "opt_out",
]
