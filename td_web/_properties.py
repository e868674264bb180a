"""Per-request properties: a callable ``default_payload``, evaluated on the caller's thread.

It runs once per request (when the request's first signal is recorded), given the framework's
request where the adapter has one, else the :class:`td_web.RequestView` (None on the bare
client, once per signal). Its keys go under the signal's own keys: a signal's payload wins.

The budget: it should return within :data:`BUDGET_SECONDS`. td_web cannot stop a slow call,
but it says so (once a minute) and keeps the keys; an exception or a non-mapping is logged the
same way and the signal goes out without them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ._log import throttled
from ._sanitize import Reporter, describe, sanitize_payload

#: What a callable default_payload may take per request before it is reported as too slow.
BUDGET_SECONDS = 0.002
_PLAIN = (str, int, float, bool, type(None))


def request_properties(make: Callable[[Any], Any], request: Any) -> dict[str, Any] | None:
    """The callable's mapping, copied (it may change after this returns), or None."""
    start = time.perf_counter()
    try:
        result = make(request)
    except Exception as exc:
        throttled.error(
            "default-payload-raised",
            "td_web: the default_payload callable raised %s: %s; signals sent without its keys",
            type(exc).__name__,
            exc,
        )
        return None
    elapsed = time.perf_counter() - start
    if elapsed > BUDGET_SECONDS:
        throttled.warning(
            "default-payload-slow",
            "td_web: the default_payload callable took %.1f ms, more than its %.0f ms budget; "
            "it runs on every request, keep it to attribute reads",
            elapsed * 1000,
            BUDGET_SECONDS * 1000,
        )
    if result is None:
        return None
    if not isinstance(result, Mapping):
        throttled.warning(
            "default-payload-type",
            "td_web: the default_payload callable returned %s, not a mapping; ignored. "
            "Return a dict.",
            describe(result),
        )
        return None
    if all(type(value) in _PLAIN for value in result.values()):
        return dict(result)
    # Nested or exotic values are turned into text here, where the request's objects live.
    return sanitize_payload(result, Reporter(False, "default_payload"))


def properties_without_request(default_payload: object) -> dict[str, Any] | None:
    """The per-call properties where there is no request (the bare client, a task, a job):
    a callable ``default_payload`` is given None; a mapping is the builder's, not per call."""
    return request_properties(default_payload, None) if callable(default_payload) else None
