"""``td_web.current()`` outside a request: in a task, a job or a function invocation.

Work a request starts elsewhere (a Celery task) keeps counting for the request's visitor: only
the two values that are already on the wire travel with it, the derived session ID and the
hashed clientUser. Neither can be turned back into the session cookie or the user id, so the
message that carries them (a broker's queue) learns nothing the ingest server does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._client import TelemetryDeck
from ._custom import SignalCall, custom_record
from ._log import logger, throttled
from ._properties import properties_without_request
from ._signal import SAMPLE_RATE_KEY, Record
from ._web.telemetry import Telemetry, _current, current

_CLIENT_USER = re.compile(r"^[0-9a-f]{64}$")
_SESSION_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


class RunTelemetry(Telemetry):
    """The helper a task, job or invocation sees as ``td_web.current()``.

    Its signals go to ``client`` with the carried session ID and clientUser hash when the
    work was started by a request, else with the client's own process-wide session.
    """

    __slots__ = ("_client", "_quiet", "_run_session_id", "_run_user_hash")

    def __init__(
        self,
        client: TelemetryDeck,
        session_id: str | None = None,
        client_user_hash: str | None = None,
        *,
        quiet: bool = False,
        sample_rate: float | None = None,
    ) -> None:
        super().__init__(None, None, None, None, False, False)
        self._client = client
        self._run_session_id = session_id
        self._run_user_hash = client_user_hash
        #: The rate the starting request's session was sampled in at: its signals carry it
        #: too, or a count divided by the rate would undercount the work it started.
        self._sample_rate = sample_rate
        #: Started by a request td_web sends nothing for (Sec-GPC, opted out, sampled out):
        #: the work it started sends nothing either.
        self._quiet = quiet

    @property
    def client(self) -> TelemetryDeck:
        return self._client

    @property
    def session_id(self) -> str:
        return self._run_session_id or self._client.builder.process_session_id

    @property
    def client_user_hash(self) -> str:
        return self._run_user_hash or self._client.builder.anonymous_user(self.session_id)

    # Telemetry.signal() with this work's client, session and user.

    _caller = "current()"

    def _live_client(self) -> TelemetryDeck | None:
        return None if self._quiet else self._client

    def _log_dropped(self, signal_type: str) -> None:
        logger.debug(
            "td_web: signal(%r) dropped: the request that started it sends nothing", signal_type
        )

    def _strict(self) -> bool:
        return self._client.config.strict

    def _custom_record(self, client: TelemetryDeck, call: SignalCall) -> Record:
        extra = properties_without_request(client.config.default_payload)
        rate = self._sample_rate
        if rate is not None:
            extra = {**(extra or {}), SAMPLE_RATE_KEY: repr(rate)}
        return custom_record(
            client.builder,
            client.config.strict,
            call,
            session_id=self._run_session_id,
            extra_payload=extra,
            # A caller's client_user overrides the user carried from the request.
            client_user_hash=None if call.client_user is not None else self._run_user_hash,
        )


def carried_context() -> dict[str, Any] | None:
    """The current request's (or task's) session ID and clientUser hash, to put in a task
    message; ``{"quiet": True}`` when td_web sends nothing for that request (Sec-GPC, opted
    out, disabled), so that the work it starts sends nothing either; None outside a request."""
    helper = current()
    if not helper.active:
        return {"quiet": True} if _current.get() is not None else None
    carried: dict[str, Any] = {}
    session_id = helper.session_id
    if session_id:
        carried["sessionID"] = session_id
    user_hash = helper.client_user_hash
    if user_hash:
        carried["clientUser"] = user_hash
    if helper.sample_rate is not None:
        carried["sampleRate"] = helper.sample_rate
    return carried or None


def helper_for(client: TelemetryDeck, carried: object, source: str) -> RunTelemetry:
    """The helper for work started with ``carried`` (a task header's value, or None)."""
    if isinstance(carried, Mapping) and carried.get("quiet") is True:
        return RunTelemetry(client, quiet=True)
    return RunTelemetry(
        client, *parse_carried(carried, source), sample_rate=_carried_rate(carried, source)
    )


def _carried_rate(carried: object, source: str) -> float | None:
    """The carried ``sampleRate`` (0 < rate < 1), or None; a malformed one is ignored with a
    warning naming it."""
    if not isinstance(carried, Mapping) or carried.get("sampleRate") is None:
        return None
    rate = carried["sampleRate"]
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0.0 < rate < 1.0:
        return float(rate)
    throttled.warning(
        "carried-rate",
        "td_web: %s['sampleRate'] is %r, not a rate between 0 and 1; ignored. Leave that "
        "header to td_web.",
        source,
        rate if isinstance(rate, (int, float)) else type(rate).__name__,
    )
    return None


def parse_carried(value: object, source: str) -> tuple[str | None, str | None]:
    """(session ID, clientUser hash) from a carried mapping; what is malformed is ignored
    with a warning naming it, the rest is used."""
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        throttled.warning(
            "carried-type",
            "td_web: %s is a %s, not a mapping; the task runs without the request's session. "
            "Leave that header to td_web.",
            source,
            type(value).__name__,
        )
        return None, None
    session_id = value.get("sessionID")
    if session_id is not None and not (
        isinstance(session_id, str) and _SESSION_ID.match(session_id)
    ):
        throttled.warning(
            "carried-session",
            "td_web: %s['sessionID'] is not 1-256 printable ASCII characters (%s); ignored. "
            "Leave that header to td_web.",
            source,
            type(session_id).__name__,
        )
        session_id = None
    user_hash = value.get("clientUser")
    if user_hash is not None and not (isinstance(user_hash, str) and _CLIENT_USER.match(user_hash)):
        throttled.warning(
            "carried-user",
            "td_web: %s['clientUser'] is not a 64-character lowercase hex hash (%s); ignored. "
            "Leave that header to td_web.",
            source,
            type(user_hash).__name__,
        )
        user_hash = None
    return session_id, user_hash
