"""Session sampling: keep a fraction of sessions whole, drop the rest whole.

The decision is a pure function of the session key and the rate: the key's hash, read as a
fraction in [0, 1), must fall below the rate. Every worker process of a site computes the same
answer for the same session without sharing anything, every request of a session gets the same
answer, and a session kept at some rate is also kept at every higher rate.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from .._log import throttled
from .._signal import SAMPLE_RATE_KEY as SAMPLE_RATE_KEY

if TYPE_CHECKING:
    from . import RequestView
    from .settings import WebSettings

#: The payload key that carries the rate on every signal of a sampled session: a count of
#: signals divided by it estimates the unsampled count (defined with the signal builder,
#: which keeps it under the key limit).
_SCALE = float(1 << 64)


def session_fraction(session_key: str) -> float:
    """A stable, uniformly spread number in [0, 1) for a session key."""
    digest = hashlib.blake2b(
        session_key.encode("utf-8", "surrogatepass"), digest_size=8, person=b"td_web.sample"
    ).digest()
    return int.from_bytes(digest, "big") / _SCALE


class SessionSampler:
    def __init__(self, settings: WebSettings) -> None:
        self.rate = settings.sample_rate
        self.sampler = settings.sampler
        #: Whether any request could be sampled out at all (else nothing is computed).
        self.active = self.sampler is not None or self.rate < 1.0

    def rate_for(self, view: RequestView) -> float:
        """The rate for this request: the sampler's answer, or ``sample_rate`` when there is
        no sampler or its answer is unusable (logged once a minute, never raised)."""
        sampler = self.sampler
        if sampler is None:
            return self.rate
        try:
            answer: Any = sampler(view)
        except Exception as exc:
            throttled.error(
                "sampler-raised",
                "td_web: the sampler raised %s: %s; sample_rate=%s used instead",
                type(exc).__name__,
                exc,
                self.rate,
            )
            return self.rate
        if (
            isinstance(answer, (int, float))
            and not isinstance(answer, bool)
            and math.isfinite(answer)
            and 0.0 <= answer <= 1.0
        ):
            return float(answer)
        throttled.warning(
            "sampler-bad",
            "td_web: the sampler returned %r, not a rate from 0.0 to 1.0; sample_rate=%s used "
            "instead",
            answer,
            self.rate,
        )
        return self.rate

    @staticmethod
    def keeps(session_key: str | None, rate: float) -> bool:
        """Whether the session is sampled in at this rate (no session: kept at rate > 0)."""
        if rate >= 1.0:
            return True
        if rate <= 0.0:
            return False
        if session_key is None:
            return True
        return session_fraction(session_key) < rate
