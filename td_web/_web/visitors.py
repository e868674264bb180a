"""New and returning visitors from an opt-in, signed first-party cookie that holds no identifier.

The cookie keeps only what TelemetryDeck's acquisition and retention keys are computed from: the
day of the first visit, how many sessions and distinct days, which of the last 30 days had one,
when the current session started and was last active, the previous session's length and the
total length of earlier sessions. It is signed with a key derived from the salt, so a client
can neither inflate it nor make td_web read a value it did not write; a cookie that fails the
check (tampered, truncated, from the future) gives no keys and is replaced by a fresh one.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .._config import ConfigurationError
from .._log import throttled
from .sessions import cookie_value
from .settings import WebSettings

_VERSION = "1"
_FIELDS = 9
#: Bits of the "days used in the last month" mask: today and the 29 days before.
_MONTH_DAYS = 30
_MONTH_MASK = (1 << _MONTH_DAYS) - 1
#: Clocks of several servers disagree a little; more than this ahead is a forged cookie.
_CLOCK_SKEW = 300
_MAX_COOKIE_LENGTH = 200
NEW_VISITOR_SIGNAL = "TelemetryDeck.Acquisition.newInstallDetected"


@dataclass(frozen=True)
class VisitorState:
    first_day: int
    sessions: int
    days: int
    last_day: int
    month_mask: int
    session_start: int
    last_seen: int
    previous_seconds: int
    earlier_seconds: int

    def fields(self) -> tuple[int, ...]:
        return (
            self.first_day,
            self.sessions,
            self.days,
            self.last_day,
            self.month_mask,
            self.session_start,
            self.last_seen,
            self.previous_seconds,
            self.earlier_seconds,
        )

    def plausible(self, now: int) -> bool:
        return (
            1 <= self.days <= self.sessions
            and self.first_day <= self.last_day <= now // 86400
            and self.session_start <= self.last_seen <= now + _CLOCK_SKEW
            and 0 <= self.month_mask <= _MONTH_MASK
        )


@dataclass(frozen=True)
class Visit:
    """One request's visitor cookie and what it tells the signals."""

    cookie_header: str
    #: Acquisition and retention keys (empty when the old cookie was broken).
    keys: Mapping[str, str]
    #: Whether this request starts the visitor's very first session.
    first_visit: bool


class VisitorPolicy:
    def __init__(self, settings: WebSettings, salt: str) -> None:
        self.cookie_name = settings.visitor_cookie_name
        self._key = hashlib.sha256(b"td_web visitor cookie\x00" + salt.encode()).digest()
        self._suffix = f"; Max-Age={settings.visitor_cookie_max_age}; Path=/"
        if settings.session_cookie_domain:
            self._suffix += f"; Domain={settings.session_cookie_domain}"
        self._suffix += f"; SameSite={settings.session_cookie_samesite}; HttpOnly"
        self._secure = settings.session_cookie_secure
        self._force_secure = settings.session_cookie_samesite == "None"

    @classmethod
    def for_settings(cls, settings: WebSettings, salt: str) -> VisitorPolicy | None:
        if not settings.visitor_cookie:
            return None
        if settings.cookieless:
            raise ConfigurationError(
                "visitor_cookie=True cannot be combined with cookieless=True: cookieless mode "
                "sets no cookie at all"
            )
        if not salt:
            raise ConfigurationError(
                "visitor_cookie=True needs a salt (TELEMETRYDECK_SALT): the cookie is signed "
                "with a key derived from it, and without one anyone could forge it"
            )
        if settings.visitor_cookie_name == settings.session_cookie_name:
            raise ConfigurationError(
                f"visitor_cookie_name {settings.visitor_cookie_name!r} is also the "
                "session_cookie_name; pick another name"
            )
        return cls(settings, salt)

    def visit(
        self,
        cookies: Mapping[str, str] | str | None,
        new_session: bool,
        https: bool,
        now: float | None = None,
    ) -> Visit:
        """Read the visitor's cookie, count this request, and write the cookie back."""
        second = int(time.time() if now is None else now)
        today = second // 86400
        raw = cookie_value(cookies, self.cookie_name)
        state = self.read(raw, second) if raw else None
        keys: dict[str, str] = {}
        first_visit = False
        if state is None:
            if raw:
                throttled.warning(
                    "visitor-cookie",
                    "td_web: a %s cookie failed its signature or sanity check (tampered, "
                    "truncated or from the future); replaced, its visitor keys not sent. If it "
                    "repeats for every visitor, give every process the same salt.",
                    self.cookie_name,
                )
            first_visit = new_session and not raw
            state = VisitorState(today, 1, 1, today, 1, second, second, 0, 0)
            if first_visit:
                keys = retention_keys(state, session_start=True)
        elif new_session:
            previous = state.last_seen - state.session_start
            gap = today - state.last_day
            state = VisitorState(
                state.first_day,
                state.sessions + 1,
                state.days + (1 if gap > 0 else 0),
                today,
                ((state.month_mask << gap) | 1) & _MONTH_MASK if gap < _MONTH_DAYS else 1,
                second,
                second,
                previous,
                state.earlier_seconds + previous,
            )
            keys = retention_keys(state, session_start=True)
        else:
            state = replace(state, last_seen=max(second, state.last_seen))
            keys = retention_keys(state, session_start=False)
        return Visit(self.cookie_header(state, https), keys, first_visit)

    def read(self, raw: str, now: int) -> VisitorState | None:
        """The state a cookie value holds, or None when it is not one td_web signed."""
        if len(raw) > _MAX_COOKIE_LENGTH:
            return None
        body, _, signature = raw.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        version, *parts = body.split(".")
        if version != _VERSION or len(parts) != _FIELDS or not all(p.isdigit() for p in parts):
            return None
        numbers = [int(part) for part in parts]
        state = VisitorState(*numbers)
        return state if state.plausible(now) else None

    def cookie_header(self, state: VisitorState, https: bool) -> str:
        body = ".".join([_VERSION, *(str(number) for number in state.fields())])
        secure = self._force_secure or (https if self._secure is None else self._secure)
        return f"{self.cookie_name}={body}.{self._sign(body)}{self._suffix}" + (
            "; Secure" if secure else ""
        )

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def retention_keys(state: VisitorState, session_start: bool) -> dict[str, str]:
    """``firstSessionDate`` always; the ``Retention`` counts on a session's first request."""
    keys = {
        "TelemetryDeck.Acquisition.firstSessionDate": _dt.date.fromordinal(
            _EPOCH_ORDINAL + state.first_day
        ).isoformat(),
    }
    if not session_start:
        return keys
    keys["TelemetryDeck.Retention.totalSessionsCount"] = str(state.sessions)
    keys["TelemetryDeck.Retention.distinctDaysUsed"] = str(state.days)
    keys["TelemetryDeck.Retention.distinctDaysUsedLastMonth"] = str(
        bin(state.month_mask).count("1")
    )
    if state.sessions > 1:
        keys["TelemetryDeck.Retention.previousSessionSeconds"] = str(state.previous_seconds)
        keys["TelemetryDeck.Retention.averageSessionSeconds"] = str(
            state.earlier_seconds // (state.sessions - 1)
        )
    return keys


_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
