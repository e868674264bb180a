"""What the privacy tests need of an adapter: a site with the canary views (``/page/``,
``/welcome/``, ``/form/``, ``/json/``, ``/custom/``, ``/planted/``, ``/boom/``) behind td_web,
driven through the framework's own machinery, in one of the adapter's user and session modes."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ingest_server import IngestServer
from privacy_canaries import CanaryRequest


@dataclass(frozen=True)
class CanaryVisit:
    """One visitor's canary requests and what their signals must show."""

    requests: list[CanaryRequest]
    #: The user id whose salted hash the signed-in signals carry.
    user_id: str
    #: The framework's own secrets of this visit (a real session key), searched for too.
    secrets: tuple[str, ...] = ()
    #: How many signals at least carry the session derived from the canary td_session token
    #: (-1: every one); None where the mode takes its session from elsewhere.
    token_sessions: int | None = None


EVERY_SIGNAL = -1


class CanarySite(Protocol):
    salt: str

    def send(self, request: CanaryRequest) -> int:
        """The status the site answers ``request`` with (no cookie kept between requests)."""

    def flush(self) -> bool:
        """Everything td_web queued has reached the ingest server."""

    def canary_visit(self) -> CanaryVisit:
        """Sign the canary user in as the mode does, and the visit that follows."""


class OpenSite(Protocol):
    """``open_site(ingest, mode, **options)``: a site, options named as ``TelemetryDeck``'s
    keyword arguments (``send_error_messages=True``); ``mode`` None: the adapter's first."""

    def __call__(
        self, ingest: IngestServer, mode: str | None = None, **options: Any
    ) -> AbstractContextManager[CanarySite]: ...
