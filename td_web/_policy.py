"""What to do with an ingest response: the status-code and backoff policy of the official SDKs."""

from __future__ import annotations

import email.utils
import enum
import random
import time

#: Retrying cannot help: the batch is dropped with one error log.
DROP_STATUSES = frozenset({400, 401, 403, 404, 422, 501, 505})
#: The batch is too large for the server: split it and send the halves.
SPLIT_STATUSES = frozenset({413})
#: Our own generator: jitter must not draw from (or disturb) the host application's.
_jitter = random.Random()
#: Honoured as a minimum wait, up to this many seconds.
MAX_RETRY_AFTER = 600.0


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    DROP = "drop"
    SPLIT = "split"


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SENT
    if status in SPLIT_STATUSES:
        return Outcome.SPLIT
    if status in DROP_STATUSES:
        return Outcome.DROP
    if status in (408, 429) or status >= 500:
        return Outcome.RETRY
    # Other 4xx, and 1xx/3xx (a redirect means a misconfigured endpoint): retrying
    # the same request cannot succeed.
    return Outcome.DROP


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(
    attempt: int, initial: float, maximum: float, retry_after: float | None = None
) -> float:
    """Exponential backoff with jitter (half fixed, half random), Retry-After as a floor."""
    ceiling = min(maximum, initial * 2.0 ** min(attempt, 32))
    delay = ceiling / 2 + _jitter.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
