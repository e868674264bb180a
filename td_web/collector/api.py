"""The read-only JSON API behind the live page (and handy for tests and scripts).

``GET /api/signals?type=&session=&test_mode=&since_id=&limit=&order=``
    Accepted signals with ``id > since_id``. ``order=desc`` (the default) gives the newest
    ``limit`` first, as the page wants; ``order=asc`` gives the oldest first, so a follower
    (``td-web tail``) can page through everything after the last id it saw.
``GET /api/violations?rule=&type=&since_id=&limit=&order=``
    Broken rules, each with the offending signal (or the start of a bad body).
``GET /api/stats?type=&session=&test_mode=&minutes=``
    Counts and chart data; ``minutes=0`` means all time.
``GET /api/dashboard?session=&test_mode=``
    The web-dashboard panels over the latest page views and session starts.
``GET /api/rules``
    Every rule id and what it means.
``GET /api/health``
    ``{"status": "ok"}``.

``test_mode`` is ``true``/``false`` (or 1/0, yes/no); empty or ``all`` means either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from .._option_values import ConfigurationError, parse_bool
from .dashboard import dashboard
from .store import SignalFilter, SignalStore
from .validate import RULES

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000


class ApiError(ValueError):
    """A bad query parameter: answered with 400 and this message."""


def answer(store: SignalStore, path: str, query: str) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON body) for an API path, or None when the path is not part of the API."""
    params = parse_qs(query, keep_blank_values=True)
    try:
        if path == "/api/signals":
            return 200, _signals(store, params)
        if path == "/api/violations":
            return 200, _violations(store, params)
        if path == "/api/stats":
            return 200, _stats(store, params)
        if path == "/api/dashboard":
            return 200, dashboard(store, signal_filter(params))
        if path == "/api/rules":
            return 200, {"rules": [{"rule": rule, "meaning": text} for rule, text in RULES.items()]}
        if path == "/api/health":
            return 200, {"status": "ok"}
    except ApiError as exc:
        return 400, {"error": str(exc)}
    return None


def _signals(store: SignalStore, params: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    newest_first = _order(params)
    signals = store.signals(
        signal_filter(params),
        since_id=_integer(params, "since_id", 0),
        limit=_limit(params),
        newest_first=newest_first,
    )
    return {"signals": [signal.to_json() for signal in signals]}


def _violations(store: SignalStore, params: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    violations = store.violations(
        rule=_text(params, "rule"),
        signal_type=_text(params, "type"),
        since_id=_integer(params, "since_id", 0),
        limit=_limit(params),
        newest_first=_order(params),
    )
    return {"violations": [violation.to_json() for violation in violations]}


def _stats(store: SignalStore, params: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    minutes = _integer(params, "minutes", 60)
    return store.stats(signal_filter(params), minutes=minutes)


def signal_filter(params: Mapping[str, Sequence[str]]) -> SignalFilter:
    return SignalFilter(
        type=_text(params, "type"),
        session=_text(params, "session"),
        test_mode=_test_mode(params),
    )


def _text(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The parameter's last value; absent or empty means "no filter"."""
    values = params.get(name)
    if not values or values[-1] == "":
        return None
    return values[-1]


def _integer(params: Mapping[str, Sequence[str]], name: str, default: int) -> int:
    text = _text(params, name)
    if text is None:
        return default
    if not text.isdigit():
        raise ApiError(f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


def _limit(params: Mapping[str, Sequence[str]]) -> int:
    limit = _integer(params, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _order(params: Mapping[str, Sequence[str]]) -> bool:
    """True for newest first."""
    order = (_text(params, "order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise ApiError(f"order must be 'asc' or 'desc', got {order!r}")
    return order == "desc"


def _test_mode(params: Mapping[str, Sequence[str]]) -> bool | None:
    text = _text(params, "test_mode")
    if text is None or text.lower() == "all":
        return None
    if text.strip():  # an empty value is no answer here (the settings read it as false)
        try:
            return parse_bool(text, "test_mode")
        except ConfigurationError:
            pass
    raise ApiError(f"test_mode must be true, false or all, got {text!r}")
