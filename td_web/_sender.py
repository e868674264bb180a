"""The background sender: a bounded queue, one worker thread and one keep-alive HTTP client.

Callers only append a record to a deque under a short lock. The worker turns records into
serialized signals, groups them into batches capped by count and bytes, POSTs them, and applies
the retry policy. At most one batch is in flight and at most about one batch waits beside it,
so memory is bounded by the queue's cap however long the ingest is away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import _capture, _shutdown
from ._config import ClientConfig
from ._encoding import encode_built_bytes, encode_json_bytes
from ._log import logger, throttled
from ._policy import Outcome, backoff_delay
from ._shutdown import live_senders as _live_senders
from ._signal import Record, Signal, SignalBuilder
from ._spool import Spool
from ._transport import Transport

#: A serialized signal and the sequence number of the record it came from.
Entry = tuple[bytes, int]


@dataclass(frozen=True)
class Stats:
    """A snapshot of a client's counters (``td.stats()``)."""

    queued: int = 0
    sent: int = 0
    retried: int = 0
    batches: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    #: Signals waiting in the on-disk spool (when one is configured).
    spooled: int = 0
    last_error: str | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Sender:
    def __init__(self, config: ClientConfig, builder: SignalBuilder) -> None:
        self._config = config
        self._builder = builder
        self._url = config.ingest_url
        # The mode is chosen once: sync mode POSTs on the caller's thread, the default queues
        # for the worker. capture() is the one switch read per call, because a test turns it
        # on around clients that already exist.
        self._accept: Callable[[Record], bool] = self._send_now if config.sync else self._enqueue
        self._reset()
        _live_senders.add(self)
        if config.spool_path and not config.sync:
            # Signals spooled by an earlier run are sent even if this one never signals.
            self._start()

    @property
    def shutdown_timeout(self) -> float:
        return self._config.shutdown_timeout

    # -- state -----------------------------------------------------------------------------

    def _reset(self) -> None:
        """Fresh state; also the whole of what a forked child does (no inherited locks)."""
        self._pid = os.getpid()
        # Reentrant: the SIGTERM handler flushes on the main thread, which may have been
        # interrupted inside put() while holding it.
        self._lock = threading.RLock()
        #: Each record with its approximate size, counted against ``max_queue_bytes``.
        self._queue: deque[tuple[Record, int]] = deque()
        self._queued_bytes = 0
        self._enqueued = 0
        self._dequeued = 0
        # Reentrant too: the SIGTERM handler may interrupt a flush() waiting on it.
        self._settled = threading.Condition(threading.RLock())
        self._settled_through = 0
        self._wake = threading.Event()
        self._flush_requested = False
        self._stopping = False
        self._stop_deadline = 0.0
        self._closed = False
        #: No client refers to this sender any more: the worker sends what it holds, then ends.
        self._orphaned = False
        self._thread: threading.Thread | None = None
        self._transport = Transport(
            self._url, self._config.timeout, self._config.transport, self._config.http_client
        )
        self._outbox: deque[Entry] = deque()
        self._inflight: list[Entry] | None = None
        self._attempt = 0
        self._retry_at: float | None = None
        self._sync_lock = threading.Lock()
        self._sent = 0
        self._retried = 0
        self._batches = 0
        self._dropped: dict[str, int] = {}
        self._last_error: str | None = None
        self._spool: Spool | None = None
        self._spool_rows = 0

    def after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its queue is the parent's to send;
        # keeping either would duplicate or deadlock.
        self._reset()

    # -- caller side -------------------------------------------------------------------------

    def put(self, record: Record) -> bool:
        """Queue a record without blocking. False when it was dropped (full, closed)."""
        if self._pid != os.getpid():  # forked by something that bypassed os.register_at_fork
            self._reset()
        if self._closed:
            # Checked before every mode: a closed client drops in tests (capture) and in sync
            # mode exactly as it does in production.
            self._refuse_after_close()
            return False
        if _capture.active:
            return self._capture(record)
        return self._accept(record)

    def _enqueue(self, record: Record) -> bool:
        if self._thread is None:
            self._start()
        size = record.approx_size()
        with self._lock:
            if self._closed:  # close() began between the check above and here
                refusal = "closed"
            elif (
                len(self._queue) >= self._config.max_queue_size
                or self._queued_bytes + size > self._config.max_queue_bytes
            ):
                self._dropped["queue_full"] = self._dropped.get("queue_full", 0) + 1
                refusal = "queue_full"
            else:
                self._queue.append((record, size))
                self._queued_bytes += size
                self._enqueued += 1
                refusal = None
                waiting = len(self._queue)
        if refusal == "closed":
            self._refuse_after_close()
            return False
        if refusal is not None:
            throttled.warning(
                "queue_full",
                "td_web: the send queue is full (%d signals or %d bytes); dropping new "
                "signals until the ingest server catches up",
                self._config.max_queue_size,
                self._config.max_queue_bytes,
            )
            return False
        # The first record wakes an idle worker (which then waits out the interval); a full
        # batch wakes it to send at once.
        if (waiting == 1 or waiting >= self._config.max_batch_size) and not self._wake.is_set():
            self._wake.set()
        return True

    def _refuse_after_close(self) -> None:
        self._count_drop("closed", 1)
        throttled.warning("closed", "td_web: a signal was sent after close() began; dropped")

    def flush(self, timeout: float) -> bool:
        """Wait until every record queued before the call is sent or finally dropped."""
        if self._pid != os.getpid():
            self._reset()
        with self._lock:
            target = self._enqueued
        if self._settled_through >= target:
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        self._flush_requested = True
        self._wake.set()
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._settled:
            while self._settled_through < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._settled.wait(remaining)
        return True

    def close(self, timeout: float, *, drain: bool = False) -> bool:
        """Deliver what was accepted within ``timeout``, then stop the worker. True when
        nothing was left behind.

        ``close()`` refuses new signals from its first moment: the caller said it is done.
        ``drain=True`` (process exit: SIGTERM, atexit) keeps accepting while it sends, because
        a threaded server is still finishing requests then, and closes the gate only once
        nothing accepted is pending (or at the deadline, and then says what was left).
        """
        if self._pid != os.getpid():
            self._reset()
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            if self._stopping:  # closed before
                return True
        self.begin_close(drain=drain)
        delivered = self._drain(deadline) if drain else self.flush(timeout)
        with self._lock:
            self._closed = True
            self._stopping = True
            self._stop_deadline = time.monotonic()
        thread = self._thread
        if thread is not None:
            self._wake.set()
            thread.join(max(deadline - time.monotonic(), 0.5))
            if thread.is_alive():
                logger.warning(
                    "td_web: the sender was still busy with a request when close() timed out"
                )
                delivered = False
        if thread is None or not thread.is_alive():
            self._transport.close()
        _live_senders.discard(self)
        return delivered

    def begin_close(self, *, drain: bool = False) -> None:
        """Start sending what is queued, without waiting; unless ``drain``, refuse new
        signals from now on. At exit every sender begins before any is waited for, so that
        all of them send in parallel."""
        with self._lock:
            if not drain:
                # From here put() refuses, so a flush covers everything ever accepted.
                self._closed = True
            target = self._enqueued
        if self._settled_through < target:
            self._flush_requested = True
            self._wake.set()

    def _drain(self, deadline: float) -> bool:
        """Flush until nothing accepted is pending, then close the gate in the same moment,
        so nothing can be accepted and then left behind."""
        while True:
            with self._lock:
                if self._settled_through >= self._enqueued:
                    self._closed = True
                    return True
            if not self.flush(deadline - time.monotonic()):
                return False

    @property
    def closed(self) -> bool:
        return self._closed

    def orphan(self) -> None:
        """The last client using this sender was garbage-collected: deliver what is queued,
        then let the worker end (nothing can be queued any more)."""
        with self._lock:
            self._closed = True
            self._orphaned = True
        self._wake.set()
        if self._thread is None:
            _live_senders.discard(self)

    def refuse(self) -> bool:
        """A closed client sharing this sender was asked to send: counted, never sent."""
        self._refuse_after_close()
        return False

    def stats(self) -> Stats:
        with self._lock:
            pending = len(self._queue)
            queued = self._enqueued
        inflight = self._inflight
        return Stats(
            queued=queued,
            sent=self._sent,
            retried=self._retried,
            batches=self._batches,
            dropped=dict(self._dropped),
            pending=pending + len(self._outbox) + (len(inflight) if inflight else 0),
            spooled=self._spool_rows,
            last_error=self._last_error,
        )

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="td_web-sender", daemon=True)
            self._thread = thread
        _shutdown.warn_if_threads_disabled()
        thread.start()

    def _capture(self, record: Record) -> bool:
        for signal in self._expand(record):
            _capture.deliver(signal)
        return True

    def _send_now(self, record: Record) -> bool:
        """Sync mode: build and POST on the caller's thread; one attempt, no waiting."""
        if _in_event_loop():
            throttled.warning(
                "sync-in-loop",
                "td_web: sync=True sends on the calling thread, here an event loop, which "
                "every other request then waits for; use the default background sender",
            )
        with self._sync_lock:
            self._enqueued += 1
            self._dequeued += 1
            self._outbox.extend(self._serialize(self._expand(record), self._dequeued))
            ok = True
            while self._outbox:
                self._inflight = self._take_batch()
                while self._inflight is not None:
                    if self._attempt_inflight(may_wait=False) is Outcome.RETRY:
                        ok = False
            self._settled_through = self._dequeued
            return ok

    # -- worker side -------------------------------------------------------------------------

    def _run(self) -> None:
        last_pump = time.monotonic()
        self._open_spool()
        if self._spool_rows:
            self._flush_requested = True
        while True:
            try:
                timeout = self._wait_time(last_pump)
                if timeout is None:  # idle: no timer, no wake-ups, until a record arrives
                    if self._orphaned:
                        self._finish_orphan()
                        return
                    self._wake.wait()
                    # Batches fill: the first record after a quiet spell waits out the interval
                    # too (a full batch or a flush still goes at once).
                    last_pump = time.monotonic()
                elif timeout > 0:
                    self._wake.wait(timeout)
                self._wake.clear()
                now = time.monotonic()
                if self._stopping and (self._idle() or now >= self._stop_deadline):
                    self._abandon_remaining()
                    return
                if self._due(now, last_pump):
                    # Between intervals only full batches go; a part batch waits for more
                    # signals, the interval, a flush or close (fewer, fuller POSTs under load).
                    partial = now - last_pump >= self._config.flush_interval
                    last_pump = now
                    self._pump(partial)
            except Exception:  # the worker must outlive any bug of ours
                logger.exception("td_web: unexpected error in the sender; it keeps running")
                self._wake.wait(1.0)

    def _wait_time(self, last_pump: float) -> float | None:
        """Seconds until the worker has something to do; None when only a record can give it
        something (idle)."""
        now = time.monotonic()
        if self._retry_at is not None:
            # A flush or close hurries the queue, never a backoff or a Retry-After: a request
            # the ingest asked us not to make is not made (close gives up at its deadline).
            until = min(self._retry_at, self._stop_deadline) if self._stopping else self._retry_at
            return max(0.0, until - now)
        if self._flush_requested or self._stopping or (self._orphaned and not self._idle()):
            return 0.0
        if self._idle() and not self._spool_rows:
            return None
        if self._batch_waiting():
            return 0.0
        return max(0.0, last_pump + self._config.flush_interval - now)

    def _due(self, now: float, last_pump: float) -> bool:
        if self._retry_at is not None:
            return now >= self._retry_at
        return (
            self._flush_requested
            or self._stopping
            or self._orphaned
            or self._batch_waiting()
            or now - last_pump >= self._config.flush_interval
        )

    def _batch_waiting(self) -> bool:
        """Whether a full batch is waiting (records counted as one signal each, the least
        they become)."""
        return len(self._queue) + len(self._outbox) >= self._config.max_batch_size

    def _idle(self) -> bool:
        return not self._queue and not self._outbox and self._inflight is None

    def _finish_orphan(self) -> None:
        self._transport.close()
        if self._spool is not None:
            self._spool.close()
        _live_senders.discard(self)

    def _pump(self, partial: bool = True) -> None:
        """Send full batches, and with ``partial`` (the interval is over) or when hurried (a
        flush, close, an orphaned sender) the last part batch too, until nothing is left or a
        retry has to wait."""
        partial = partial or self._flush_requested or self._stopping or self._orphaned
        self._flush_requested = False
        self._retry_at = None
        while True:
            if self._inflight is None:
                hurried = self._flush_requested or self._stopping
                if not (partial or hurried or self._batch_waiting()):
                    self._mark_settled()
                    return
                self._fill_outbox()
                if not self._outbox:
                    self._mark_settled()
                    return
                self._inflight = self._take_batch()
            outcome = self._attempt_inflight()
            self._mark_settled()
            if outcome is Outcome.RETRY:
                if self._spool is not None and (
                    len(self._queue) >= self._config.max_queue_size // 2
                    or self._queued_bytes >= self._config.max_queue_bytes // 2
                ):
                    self._spill_queue()
                return
            if self._stopping and time.monotonic() >= self._stop_deadline:
                return

    def _fill_outbox(self) -> None:
        """Expand queued records until one batch is ready (never the whole queue)."""
        target = self._config.max_batch_size
        while len(self._outbox) < target:
            if self._spool_rows and self._spool is not None:
                claimed = self._spool.claim(target - len(self._outbox))
                self._spool_rows = self._spool.count() if claimed else 0
                self._outbox.extend(claimed)
                continue
            with self._lock:
                if not self._queue:
                    return
                record, size = self._queue.popleft()
                self._queued_bytes -= size
                self._dequeued += 1
                seq = self._dequeued
            self._outbox.extend(self._serialize(self._expand(record), seq))

    def _expand(self, record: Record) -> Iterable[Signal]:
        try:
            signals = list(record.signals(self._builder))
        except Exception:
            if self._config.strict and self._config.sync:
                raise
            logger.exception("td_web: could not build a signal; it was dropped")
            self._count_drop("invalid", 1)
            return ()
        hook = self._config.on_signal
        if hook is not None:
            for signal in signals:
                try:
                    hook(signal)
                except Exception:
                    logger.exception("td_web: the on_signal hook raised")
        return signals

    def _serialize(self, signals: Iterable[Signal], seq: int) -> list[Entry]:
        entries = []
        encode = encode_json_bytes if self._config.on_signal is not None else encode_built_bytes
        for signal in signals:
            try:
                data = encode(signal)
            except (TypeError, ValueError) as exc:
                logger.error(
                    "td_web: signal %r could not be serialized (%s); dropped",
                    signal.get("type"),
                    exc,
                )
                self._count_drop("invalid", 1)
                continue
            if len(data) + 2 > self._config.max_batch_bytes:
                logger.error(
                    "td_web: signal %r is %d bytes, more than max_batch_bytes (%d); dropped",
                    signal.get("type"),
                    len(data),
                    self._config.max_batch_bytes,
                )
                self._count_drop("too_large", 1)
                continue
            entries.append((data, seq))
        return entries

    def _take_batch(self) -> list[Entry]:
        batch: list[Entry] = []
        size = 2  # the brackets
        limit = self._config.max_batch_bytes
        while self._outbox and len(batch) < self._config.max_batch_size:
            entry_size = len(self._outbox[0][0]) + 1
            if batch and size + entry_size > limit:
                break
            batch.append(self._outbox.popleft())
            size += entry_size
        return batch

    def _attempt_inflight(self, may_wait: bool = True) -> Outcome:
        batch = self._inflight
        assert batch is not None
        body = b"[" + b",".join(entry[0] for entry in batch) + b"]"
        answer = self._transport.post(body)
        outcome, detail = answer.outcome, answer.detail
        if answer.error is not None:
            self._last_error = answer.error
        if outcome is Outcome.SENT:
            self._sent += len(batch)
            self._batches += 1
            self._attempt = 0
            self._inflight = None
        elif outcome is Outcome.DROP:
            logger.error(
                "td_web: the ingest server rejected a batch of %d signals (%s); dropped. %s",
                len(batch),
                detail,
                self._last_error,
            )
            self._drop_inflight("rejected")
        elif outcome is Outcome.SPLIT:
            if len(batch) == 1:
                logger.error(
                    "td_web: the ingest server refused one signal as too large (HTTP 413); dropped"
                )
                self._drop_inflight("too_large")
            else:
                half = len(batch) // 2
                self._outbox.extendleft(reversed(batch[half:]))
                self._inflight = batch[:half]
        else:
            if not may_wait:
                throttled.warning(
                    "send_failed",
                    "td_web: sending %d signals failed (%s); dropped (sync mode does not retry)",
                    len(batch),
                    detail,
                )
                self._drop_inflight("send_failed")
                return outcome
            self._retried += len(batch)
            self._attempt += 1
            limit = self._config.max_retries
            if limit is not None and self._attempt > limit:
                logger.error(
                    "td_web: giving up on a batch of %d signals after %d attempts (%s)",
                    len(batch),
                    self._attempt,
                    detail,
                )
                self._drop_inflight("retries_exhausted")
                return Outcome.DROP
            delay = backoff_delay(
                self._attempt - 1,
                self._config.initial_backoff,
                self._config.max_backoff,
                answer.retry_after,
            )
            self._retry_at = time.monotonic() + delay
            throttled.log(
                logging.WARNING,
                "retry",
                "td_web: sending %d signals failed (%s); retrying in %.1fs",
                len(batch),
                detail,
                delay,
            )
        return outcome

    def _drop_inflight(self, reason: str) -> None:
        if self._inflight:
            self._count_drop(reason, len(self._inflight))
        self._inflight = None
        self._attempt = 0

    def _mark_settled(self) -> None:
        # Entries from another run's spool carry sequence number 0 and hold up no flush.
        candidates = [self._dequeued + 1]
        if self._inflight:
            candidates.append(next((q for _, q in self._inflight if q), candidates[0]))
        if self._outbox:
            candidates.append(next((q for _, q in self._outbox if q), candidates[0]))
        if self._spool_rows and self._spool is not None:
            oldest = self._spool.oldest_own_seq()
            if oldest is not None:
                candidates.append(oldest)
        with self._settled:
            self._settled_through = min(candidates) - 1
            self._settled.notify_all()

    def _abandon_remaining(self) -> None:
        """At shutdown: spool what is left when a spool is configured, else count the loss."""
        records = self._take_queue()
        left = list(self._inflight or ()) + list(self._outbox)
        self._outbox.clear()
        self._inflight = None
        if self._spool is not None:
            queued: list[Entry] = []
            for record, seq in records:
                queued.extend(self._serialize(self._expand(record), seq))
            self._write_spool(left, front=True)
            self._write_spool(queued)
            if left or queued:
                logger.warning(
                    "td_web: %d unsent signals were written to the spool at %s; they are sent "
                    "when a process with the same spool next runs",
                    len(left) + len(queued),
                    self._spool.path,
                )
        else:
            count = len(left) + len(records)
            if count:
                self._count_drop("shutdown", count)
                logger.warning(
                    "td_web: %d signals were still unsent when close() ran out of time and were "
                    "dropped (%s)",
                    count,
                    f"the last attempt failed: {self._last_error}"
                    if self._retry_at is not None or self._attempt
                    else "the ingest server answered, but not all of them in time",
                )
        self._mark_settled()
        if self._spool is not None:
            self._spool.close()

    def _take_queue(self) -> list[tuple[Record, int]]:
        with self._lock:
            records = [record for record, _ in self._queue]
            self._queue.clear()
            self._queued_bytes = 0
            first = self._dequeued + 1
            self._dequeued += len(records)
        return [(record, first + i) for i, record in enumerate(records)]

    def _spill_queue(self) -> None:
        """A long outage: move queued signals to disk so the queue can keep accepting.

        What is in flight goes first, so the spool stays oldest first; the backoff state
        stays, and the next attempt takes the same signals back from the spool.
        """
        taken_out = list(self._inflight or ()) + list(self._outbox)
        self._inflight = None
        self._outbox.clear()
        self._write_spool(taken_out, front=True)
        entries: list[Entry] = []
        for record, seq in self._take_queue():
            entries.extend(self._serialize(self._expand(record), seq))
        self._write_spool(entries)

    def _write_spool(self, entries: list[Entry], *, front: bool = False) -> None:
        if not entries:
            return
        assert self._spool is not None
        try:
            overflow = self._spool.put(entries, front=front)
        except Exception:
            logger.exception(
                "td_web: writing %d signals to the spool failed; dropped", len(entries)
            )
            self._count_drop("spool_error", len(entries))
            return
        if overflow:
            self._count_drop("spool_full", overflow)
        self._spool_rows = self._spool.count()

    def _open_spool(self) -> None:
        path = self._config.spool_path
        if not path or self._spool is not None:
            return
        try:
            self._spool = Spool(path, self._url, self._config.spool_max_signals)
            self._spool_rows = self._spool.count()
        except Exception:
            logger.exception(
                "td_web: the spool at %s could not be opened; running without it", path
            )
            self._spool = None

    def _count_drop(self, reason: str, count: int) -> None:
        # Callers count queue_full drops while the worker counts the rest: one lock for both.
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
