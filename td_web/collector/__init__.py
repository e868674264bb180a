"""A local TelemetryDeck ingest server with a live view: ``td-web collect``.

It speaks the Ingest API v2 (``POST /v2/`` and ``/v2/namespace/{ns}/``), checks every signal
as a strict server would (:mod:`.validate`, rule ids in :data:`RULES`), stores what arrives in
SQLite (:mod:`.store` documents the schema) and shows it on a live page at ``/``.

In-process use (tests, the demo)::

    from td_web.collector import Collector

    with Collector("signals.db", port=0) as collector:
        client = td_web.TelemetryDeck(app_id="...", endpoint=collector.url)
        ...
        collector.wait_for_signals(1)
        collector.signals(), collector.violations(), collector.stats()

Standard library only (plus nothing): importing it never pulls in a web framework.
"""

from __future__ import annotations

from .ingest import DEFAULT_MAX_BODY_BYTES
from .server import DEFAULT_DB_PATH, DEFAULT_HOST, DEFAULT_PORT, Collector
from .store import SignalFilter, SignalStore, StoredSignal, StoredViolation, StoreError
from .validate import RULES, Problem, Verdict, validate_body

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "RULES",
    "Collector",
    "Problem",
    "SignalFilter",
    "SignalStore",
    "StoreError",
    "StoredSignal",
    "StoredViolation",
    "Verdict",
    "validate_body",
]
