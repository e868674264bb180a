"""A sender without a thread, for functions whose process is frozen between invocations.

Signals wait in memory until the invocation ends; then ``flush(budget)`` sends them on the
calling thread, batch after batch over one keep-alive connection, each request's timeout cut
to what is left of the budget. Nothing runs between invocations, so nothing can be caught
mid-request by a freeze: a request the budget cut short was abandoned with its connection,
and its signals stay queued for the next invocation (sent again only if the server never
answered; the Ingest API has no idempotency key).
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections import deque

from .. import _capture
from .._config import ClientConfig
from .._encoding import RecordEncoder
from .._log import logger, throttled
from .._policy import Outcome, backoff_delay
from .._sender import Sender, Stats
from .._shutdown import live_senders
from .._signal import Record, SignalBuilder
from .._transport import Transport


class InvocationSender(Sender):
    """The client's sender in :class:`td_web.serverless.TelemetryDeck`: same interface
    (``put``, ``flush``, ``close``, ``stats``), no background thread."""

    def __init__(self, config: ClientConfig, builder: SignalBuilder) -> None:
        # Deliberately not Sender.__init__: no worker thread, queue or spool is wanted here.
        self._config = config
        self._encoder = RecordEncoder(config, builder, self._count_drop)
        self._url = config.ingest_url
        self._reset()
        # Built now, at the function's cold start: building it (its TLS context) inside the
        # first invocation would eat that invocation's budget.
        self._transport.prepare()
        live_senders.add(self)  # delivered at exit and rebuilt after fork like any sender

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._records: deque[Record] = deque()
        #: Serialized signals not yet accepted, oldest first; kept across invocations.
        self._pending: deque[bytes] = deque()
        self._transport = Transport(
            self._url, self._config.timeout, self._config.transport, self._config.http_client
        )
        self._closed = False
        self._attempts = 0
        #: Wall-clock time before which the server asked not to be called again (429, 503).
        self._not_before = 0.0
        self._queued = 0
        self._sent = 0
        self._retried = 0
        self._batches = 0
        self._dropped: dict[str, int] = {}
        self._last_error: str | None = None

    def after_fork_in_child(self) -> None:
        self._reset()

    # -- caller side -------------------------------------------------------------------------

    def put(self, record: Record) -> bool:
        if self._pid != os.getpid():
            self._reset()
        if _capture.active:
            for signal in self._encoder.signals(record):
                _capture.deliver(signal)
            return True
        with self._lock:
            if self._closed:
                self._count_drop("closed", 1)
                return False
            if len(self._records) + len(self._pending) >= self._config.max_queue_size:
                self._count_drop("queue_full", 1)
                full = True
            else:
                self._records.append(record)
                self._queued += 1
                full = False
        if full:
            throttled.warning(
                "queue_full",
                "td_web: %d signals are waiting for delivery (max_queue_size); dropping new "
                "ones until an invocation delivers them",
                self._config.max_queue_size,
            )
        return not full

    def flush(self, timeout: float) -> bool:
        """Send everything queued, on this thread, within ``timeout`` seconds. True when
        nothing is left; what is left waits for the next call."""
        if self._pid != os.getpid():
            self._reset()
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            records = list(self._records)
            self._records.clear()
        for record in records:
            # Sender's building and encoding, then only the bytes: no sequence numbers here.
            self._pending.extend(data for data, _ in self._encoder.entries(record, 0))
        if self._pending and time.time() < self._not_before:
            logger.info("td_web: the ingest server asked for a pause; sending next invocation")
            return False
        reconnected = False
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch = self._batch()
            result = self._post(batch, remaining)
            if result is _Result.STALE:
                if not reconnected:
                    reconnected = True  # once per invocation, on a fresh connection
                    continue
                result = self._failed(batch, None)
            if result is not _Result.DONE:
                break
        if self._pending:
            logger.warning(
                "td_web: %d signals were not delivered within the invocation's budget (%.2fs); "
                "they are sent at the end of the next invocation",
                len(self._pending),
                timeout,
            )
            return False
        return True

    def close(self, timeout: float, *, drain: bool = False) -> bool:
        delivered = self.flush(timeout)
        with self._lock:
            self._closed = True
            left = len(self._records) + len(self._pending)
            self._records.clear()
            self._pending.clear()
        if left:
            self._count_drop("shutdown", left)
        self._transport.close()
        live_senders.discard(self)
        return delivered

    def begin_close(self, *, drain: bool = False) -> None:
        """Nothing runs in the background here: ``close`` does all the sending."""

    def orphan(self) -> None:
        """The function's client was garbage-collected: nothing can send what it held."""
        self.close(0)

    def stats(self) -> Stats:
        with self._lock:
            pending = len(self._records) + len(self._pending)
        return Stats(
            queued=self._queued,
            sent=self._sent,
            retried=self._retried,
            batches=self._batches,
            dropped=dict(self._dropped),
            pending=pending,
            last_error=self._last_error,
        )

    # -- delivery ----------------------------------------------------------------------------

    def _batch(self) -> list[bytes]:
        """The oldest pending signals that fit one request (they stay pending until sent)."""
        batch: list[bytes] = []
        size = 1  # the opening bracket: each signal counts its comma, the last the closing one
        for entry in self._pending:
            if len(batch) >= self._config.max_batch_size or (
                batch and size + len(entry) + 1 > self._config.max_batch_bytes
            ):
                break
            batch.append(entry)
            size += len(entry) + 1
        return batch

    def _post(self, batch: list[bytes], remaining: float) -> _Result:
        """One request: DONE when the batch left the queue (sent or finally dropped)."""
        body = b"[" + b",".join(batch) + b"]"
        # A keep-alive connection that died while the process was frozen comes back stale:
        # the next request opens a fresh one, if the budget allows.
        answer = self._transport.post(body, timeout=min(self._config.timeout, remaining))
        if answer.outcome is Outcome.SENT:
            self._take(len(batch))
            self._sent += len(batch)
            self._batches += 1
            self._attempts = 0
            return _Result.DONE
        self._last_error = answer.error
        if answer.stale:
            return _Result.STALE
        if answer.outcome is Outcome.SPLIT and len(batch) > 1:
            # Send the first half on its own; the rest follows in later batches.
            return self._post(batch[: len(batch) // 2], remaining)
        if answer.outcome in (Outcome.DROP, Outcome.SPLIT):
            reason = "too_large" if answer.outcome is Outcome.SPLIT else "rejected"
            logger.error(
                "td_web: the ingest server refused %d signals (%s); dropped",
                len(batch),
                self._last_error,
            )
            self._take(len(batch))
            self._count_drop(reason, len(batch))
            self._attempts = 0
            return _Result.DONE
        return self._failed(batch, answer.retry_after)

    def _failed(self, batch: list[bytes], retry_after: float | None) -> _Result:
        self._retried += len(batch)
        self._attempts += 1
        limit = self._config.max_retries
        if limit is not None and self._attempts > limit:
            logger.error(
                "td_web: giving up on %d signals after %d attempts (%s)",
                len(batch),
                self._attempts,
                self._last_error,
            )
            self._take(len(batch))
            self._count_drop("retries_exhausted", len(batch))
            self._attempts = 0
            return _Result.DONE
        delay = backoff_delay(
            self._attempts - 1, self._config.initial_backoff, self._config.max_backoff, retry_after
        )
        # Wall-clock time: the monotonic clock may stand still while the process is frozen.
        self._not_before = time.time() + delay
        return _Result.FAILED

    def _take(self, count: int) -> None:
        for _ in range(count):
            self._pending.popleft()


class _Result(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    #: The connection died under us (frozen while idle): worth one retry on a new one.
    STALE = "stale"
