"""The background sender: a bounded queue, one worker thread and one keep-alive HTTP client.

Callers only append a record to a deque under a short lock. The worker turns records into
serialized signals, groups them into batches capped by count and bytes, hands them to poster
threads (``_posters``: up to ``max_in_flight`` at once, when full batches wait), and applies the
retry policy to each answer. Signals taken out of the queue count against its caps until they
are delivered or dropped, so memory is bounded by the caps however long the ingest is away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _capture, _shutdown
from ._batches import Batch, Outbox
from ._config import ClientConfig
from ._encoding import Entry, RecordEncoder
from ._log import logger, throttled
from ._policy import Outcome, backoff_delay
from ._posters import Posters
from ._shutdown import live_senders as _live_senders
from ._signal import Record, SignalBuilder
from ._spool import Spool
from ._transport import Answer, Transport


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


class Sender:
    def __init__(self, config: ClientConfig, builder: SignalBuilder) -> None:
        self._config = config
        self._encoder = RecordEncoder(config, builder, self._count_drop)
        self._url = config.ingest_url
        # Sync mode POSTs on the caller's thread, the default queues for the worker.
        # capture() is a switch read per call too, because a test turns it on around clients
        # that already exist.
        self._sync = config.sync
        # The caps, read by every put: an attribute of the sender is one lookup fewer.
        self._max_records = config.max_queue_size
        self._max_bytes = config.max_queue_bytes
        self._batch_size = config.max_batch_size
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
        # uWSGI forks its workers in C and by default runs no os.register_at_fork hook in
        # them (its py-call-osafterfork is off): there, and only there, the process id is
        # compared (a getpid system call, ~0.3 µs) before the sender is used.
        self._pid = os.getpid() if "uwsgi" in sys.modules else None
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
            self._url,
            self._config.timeout,
            self._config.transport,
            self._config.http_client,
            connections=self._config.max_in_flight,
        )
        # The parent's posters do not exist in a forked child: new ones start when needed.
        self._posters: Posters[Batch] = Posters(self._transport, self._wake)
        self._outbox = Outbox()
        #: Batches whose POST failed (or was split by a 413), to be sent again as they are.
        self._retry: deque[Batch] = deque()
        self._in_flight: set[Batch] = set()
        #: Signals taken out of the queue and not yet settled (outbox, retries, in flight),
        #: counted against the queue's caps with their serialized size.
        self._held_signals = 0
        self._held_bytes = 0
        #: Set by an answer that failed, cleared by one that succeeded: meanwhile one batch at
        #: a time probes the ingest.
        self._failing = False
        #: No POST starts before this (backoff, Retry-After): a pause for every poster.
        self._retry_at: float | None = None
        #: Sending what is queued, part batch included (the interval, a flush), until nothing
        #: is left to start.
        self._sweeping = False
        self._sync_lock = threading.Lock()
        self._sent = 0
        self._retried = 0
        self._batches = 0
        self._dropped: dict[str, int] = {}
        self._last_error: str | None = None
        self._spool: Spool | None = None

    def after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its queue is the parent's to send;
        # keeping either would duplicate or deadlock. Also after the parent's exit path
        # closed it: the child is a process of its own, whose clients nobody closed. (A
        # user's close() took the sender out of the hook's reach, and the client stays
        # closed.)
        self._reset()

    # -- caller side -------------------------------------------------------------------------

    def put(self, record: Record) -> bool:
        """Queue a record without blocking. False when it was dropped (full, closed).

        ``os.register_at_fork`` resets every live sender in a forked child (``_shutdown``),
        so a put pays no ``getpid`` system call after ``os.fork``, multiprocessing or
        gunicorn; only under uWSGI, whose C fork runs no such hook, is the process id
        compared (``_reset``)."""
        if self._pid is not None and self._pid != os.getpid():
            self._reset()
        if self._closed:
            # Checked before every mode: a closed client drops in tests (capture) and in sync
            # mode exactly as it does in production.
            self._refuse_after_close()
            return False
        if _capture.active:
            return self._capture(record)
        if self._sync:
            return self._send_now(record)
        # The queue's put, inline and spelled out: it runs once per request, and a call of
        # its own, a ``with`` block (its __exit__ call) and the caps read through the config
        # were 2,700 of the put's 11,100 instructions (valgrind, BENCHMARKS.md).
        if self._thread is None:
            self._start()
        size = record.approx_size()
        queue = self._queue
        lock = self._lock
        refusal: Callable[[], None] | None = None
        lock.acquire()
        try:
            if self._closed:  # close() may have begun since the test above
                refusal = self._refuse_after_close
            elif (
                len(queue) + self._held_signals >= self._max_records
                or self._queued_bytes + self._held_bytes + size > self._max_bytes
            ):
                self._dropped["queue_full"] = self._dropped.get("queue_full", 0) + 1
                refusal = self._queue_full
            else:
                queue.append((record, size))
                self._queued_bytes += size
                self._enqueued += 1
                waiting = len(queue)
        finally:
            lock.release()
        if refusal is not None:
            refusal()
            return False
        # The first record wakes an idle worker (which then waits out the interval); the one
        # that completes a batch wakes it to send at once. Not every record after that: the
        # worker looks at the queue before each wait, and waits only for what a record cannot
        # change (an answer while max_in_flight batches are out, a backoff), so waking it per
        # record cost it a pass of ~50 µs each while the ingest was slow.
        if (waiting == 1 or waiting == self._batch_size) and not self._wake.is_set():
            self._wake.set()
        return True

    def _queue_full(self) -> None:
        throttled.warning(
            "queue_full",
            "td_web: the send queue is full (%d signals or %d bytes); dropping new "
            "signals until the ingest server catches up",
            self._max_records,
            self._max_bytes,
        )

    def _refuse_after_close(self) -> None:
        self._count_drop("closed", 1)
        throttled.warning("closed", "td_web: a signal was sent after close() began; dropped")

    def flush(self, timeout: float) -> bool:
        """Wait until every record queued before the call is sent or finally dropped."""
        if self._pid is not None and self._pid != os.getpid():
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
        if self._pid is not None and self._pid != os.getpid():
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
        if not drain:
            # Closed by the exit path (drain), it stays known to the fork hook: a child forked
            # meanwhile starts it afresh, where the user's close() stays closed in a child.
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
            pending = len(self._queue) + self._held_signals
            queued = self._enqueued
        return Stats(
            queued=queued,
            sent=self._sent,
            retried=self._retried,
            batches=self._batches,
            dropped=dict(self._dropped),
            pending=pending,
            spooled=self._spooled,
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
        for signal in self._encoder.signals(record):
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
            self._take_out(self._encoder.entries(record, self._dequeued), record.approx_size())
            ok = True
            while self._outbox or self._retry:
                batch = self._retry.popleft() if self._retry else self._take_batch()
                answer = self._transport.post(batch.body())
                if self._settle(batch, answer, may_wait=False) is Outcome.RETRY:
                    ok = False
            self._settled_through = self._dequeued
            return ok

    # -- worker side -------------------------------------------------------------------------

    def _run(self) -> None:
        last_pump = time.monotonic()
        self._open_spool()
        if self._spooled:
            self._flush_requested = True
        while True:
            try:
                timeout = self._wait_time(last_pump)
                if timeout is None:  # no timer: a record, an answer or a flush wakes it
                    if self._orphaned and self._idle():
                        self._finish_orphan()
                        return
                    was_idle = self._idle()
                    self._wake.wait()
                    if was_idle:
                        # Batches fill: the first record after a quiet spell waits out the
                        # interval too (a full batch or a flush still goes at once).
                        last_pump = time.monotonic()
                elif timeout > 0:
                    self._wake.wait(timeout)
                self._wake.clear()
                self._collect_answers()
                now = time.monotonic()
                if self._stopping and (
                    self._idle() or (now >= self._stop_deadline and not self._in_flight)
                ):
                    self._abandon_remaining()
                    return
                if self._stopping and now >= self._stop_deadline and self._unstarted():
                    # Nothing starts after close()'s deadline: what has not started is put
                    # away now, not after the last answer, which may come after the exit.
                    self._put_away_unsent()
                if self._due(now, last_pump):
                    # Between intervals only full batches go; a part batch waits for more
                    # signals, the interval, a flush or close (fewer, fuller POSTs under load).
                    if now - last_pump >= self._config.flush_interval:
                        self._sweeping = True
                    last_pump = now
                    self._pump(now)
            except Exception:  # the worker must outlive any bug of ours
                logger.exception("td_web: unexpected error in the sender; it keeps running")
                self._wake.wait(1.0)

    def _prepare_transport(self) -> None:
        """Build the HTTP client here, on the worker's one thread, before the first POST:
        posters starting together would each build one (a TLS context each) and leave all
        but the last open, never closed."""
        try:
            self._transport.prepare()
        except Exception:
            # Every POST then fails the same way and says why (Transport.post never raises).
            logger.debug("td_web: the HTTP client could not be built yet", exc_info=True)

    def _wait_time(self, last_pump: float) -> float | None:
        """Seconds until the worker has something to do; None when only a record, an answer
        or a flush can give it something."""
        now = time.monotonic()
        if self._in_flight and (
            len(self._in_flight) >= self._limit()
            or not self._startable()
            # Past close()'s deadline nothing more starts: only an answer is worth waking for.
            or (self._stopping and now >= self._stop_deadline)
        ):
            # Waiting for an answer, which wakes the worker (close() waits for every answer:
            # a batch in flight may be delivered, so it is neither spooled nor counted lost).
            if self._stopping and now < self._stop_deadline:
                return self._stop_deadline - now
            return None
        if self._retry_at is not None:
            # A flush or close hurries the queue, never a backoff or a Retry-After: a request
            # the ingest asked us not to make is not made (close gives up at its deadline).
            until = min(self._retry_at, self._stop_deadline) if self._stopping else self._retry_at
            return max(0.0, until - now)
        if self._flush_requested or self._stopping or (self._orphaned and not self._idle()):
            return 0.0
        if self._idle() and not self._spooled:
            return None
        if self._batch_waiting() or (self._sweeping and self._startable()):
            return 0.0
        return max(0.0, last_pump + self._config.flush_interval - now)

    def _due(self, now: float, last_pump: float) -> bool:
        if self._retry_at is not None:
            return now >= self._retry_at
        return (
            self._flush_requested
            or self._stopping
            or self._orphaned
            or self._sweeping
            or self._batch_waiting()
            or now - last_pump >= self._config.flush_interval
        )

    def _batch_waiting(self) -> bool:
        """Whether a full batch is waiting (records counted as one signal each, the least
        they become)."""
        return (
            bool(self._retry) or len(self._queue) + len(self._outbox) >= self._config.max_batch_size
        )

    def _startable(self) -> bool:
        """Whether anything is left to start a POST with."""
        return bool(self._retry or self._outbox or self._queue or self._spooled)

    def _limit(self) -> int:
        """How many batches may be in flight now: one while the ingest is failing (a probe)
        or the spool is resent (oldest first), else ``max_in_flight``."""
        if self._failing or self._spooled or any(b.spooled for b in self._in_flight):
            return 1
        return self._config.max_in_flight

    def _idle(self) -> bool:
        return not self._queue and self._held_signals == 0 and not self._in_flight

    def _finish_orphan(self) -> None:
        self._posters.stop()
        self._transport.close()
        if self._spool is not None:
            self._spool.close()
        _live_senders.discard(self)

    def _pump(self, now: float) -> None:
        """Start POSTs up to the in-flight limit: retried batches first, then full batches,
        and while sweeping (the interval is over) or hurried (a flush, close, an orphaned
        sender) the last part batch too."""
        if self._flush_requested:
            # Taken over here, so that a flush asked for from now on is not lost.
            self._flush_requested = False
            self._sweeping = True
        self._retry_at = None
        hurried = self._sweeping or self._stopping or self._orphaned
        while len(self._in_flight) < self._limit():
            if self._stopping and now >= self._stop_deadline:
                break
            if self._retry:
                batch = self._retry.popleft()
            elif hurried or self._batch_waiting():
                self._fill_outbox()
                if not self._outbox:
                    self._sweeping = False  # everything queued has started
                    break
                batch = self._take_batch()
            else:
                break
            if not self._transport.built:
                self._prepare_transport()
            self._in_flight.add(batch)
            self._posters.post(batch, batch.body(), len(self._in_flight))
        self._mark_settled()

    def _collect_answers(self) -> None:
        answers = self._posters.answers()
        for batch, answer in answers:
            self._in_flight.discard(batch)
            if self._settle(batch, answer) is Outcome.RETRY and self._queue_crowded():
                self._spill_queue()
        if answers:
            self._mark_settled()

    def _queue_crowded(self) -> bool:
        """Whether a failing ingest should make room on disk (with a spool) now: only with
        nothing in flight, so that what is spilled is older than every row (a batch still in
        flight may be younger than rows spilled before it fails)."""
        return (
            self._spool is not None
            and not self._in_flight
            and (
                len(self._queue) + self._held_signals >= self._config.max_queue_size // 2
                or self._queued_bytes + self._held_bytes >= self._config.max_queue_bytes // 2
            )
        )

    def _fill_outbox(self) -> None:
        """Expand queued records until one batch is ready (never the whole queue)."""
        target = self._config.max_batch_size
        while len(self._outbox) < target:
            if self._spool is not None and self._spool.rows:
                self._take_out(self._spool.take(target - len(self._outbox)), None, spooled=True)
                continue
            # Each record becomes one signal at least: never more records than the batch lacks.
            records, first, held = self._dequeue(target - len(self._outbox))
            if not records:
                return
            self._expand(records, first, held)

    def _dequeue(self, most: int) -> tuple[list[tuple[Record, int]], int, int]:
        """Up to ``most`` records out of the queue under one lock (not one per record), the
        sequence number of the first, and their estimated size. They stay charged against the
        caps, as held signals of that size, until ``_expand`` holds what they became."""
        with self._lock:
            queue = self._queue
            records = [queue.popleft() for _ in range(min(most, len(queue)))]
            size = sum(size for _, size in records)
            self._queued_bytes -= size
            self._held_signals += len(records)
            self._held_bytes += size
            first = self._dequeued + 1
            self._dequeued += len(records)
        return records, first, size

    def _expand(self, records: list[tuple[Record, int]], first: int, held: int) -> None:
        """Dequeued records into the outbox as serialized signals; the hold is corrected
        only where a record became other than one signal (none, several, or lost to a bug)."""
        expanded: list[tuple[list[Entry], int]] = []
        entries = self._encoder.entries
        for seq, (record, size) in enumerate(records, first):
            # ``_entries`` inline: a call fewer per record (a tenth of a custom signal's cost).
            try:
                expanded.append((entries(record, seq), size))
            except Exception:
                expanded.append((self._expansion_failed(), size))
        signals, charged = self._outbox.add_records(expanded)
        if signals != len(records) or charged != held:
            self._hold(signals - len(records), charged - held)

    def _take_out(
        self, entries: list[Entry], record_size: int | None, *, spooled: bool = False
    ) -> None:
        """Entries into the outbox, held against the queue's caps until they are settled."""
        self._hold(len(entries), self._outbox.add(entries, record_size, spooled=spooled))

    def _hold(self, signals: int, size: int) -> None:
        with self._lock:
            self._held_signals += signals
            self._held_bytes += size

    def _take_batch(self) -> Batch:
        return self._outbox.take_batch(self._config.max_batch_size, self._config.max_batch_bytes)

    def _settle(self, batch: Batch, answer: Answer, may_wait: bool = True) -> Outcome:
        """Apply the answer to one POST of ``batch``: counted as sent, dropped, split or queued
        to be retried as the same batch after a pause of all posting."""
        outcome, detail = answer.outcome, answer.detail
        if answer.error is not None:
            self._last_error = answer.error
        count = len(batch.entries)
        if outcome is Outcome.SENT:
            self._sent += count
            self._batches += 1
            self._failing = False
            self._release(batch)
        elif outcome is Outcome.DROP:
            logger.error(
                "td_web: the ingest server rejected a batch of %d signals (%s); dropped. %s",
                count,
                detail,
                self._last_error,
            )
            self._drop(batch, "rejected")
        elif outcome is Outcome.SPLIT:
            if count == 1:
                logger.error(
                    "td_web: the ingest server refused one signal as too large (HTTP 413); dropped"
                )
                self._drop(batch, "too_large")
            else:
                first, second = batch.halves()
                self._retry.extendleft((second, first))
        else:
            if not may_wait:
                throttled.warning(
                    "send_failed",
                    "td_web: sending %d signals failed (%s); dropped (sync mode does not retry)",
                    count,
                    detail,
                )
                self._drop(batch, "send_failed")
                return outcome
            self._retried += count
            batch.attempt += 1
            self._failing = True
            limit = self._config.max_retries
            if limit is not None and batch.attempt > limit:
                logger.error(
                    "td_web: giving up on a batch of %d signals after %d attempts (%s)",
                    count,
                    batch.attempt,
                    detail,
                )
                self._drop(batch, "retries_exhausted")
                return Outcome.DROP
            delay = backoff_delay(
                batch.attempt - 1,
                self._config.initial_backoff,
                self._config.max_backoff,
                answer.retry_after,
            )
            # One pause for every poster: the ingest asked us (or is failing) to back off.
            self._retry_at = max(self._retry_at or 0.0, time.monotonic() + delay)
            self._retry.append(batch)
            throttled.log(
                logging.WARNING,
                "retry",
                "td_web: sending %d signals failed (%s); retrying in %.1fs",
                count,
                detail,
                delay,
            )
        return outcome

    def _drop(self, batch: Batch, reason: str) -> None:
        self._count_drop(reason, len(batch.entries))
        self._release(batch)

    def _release(self, batch: Batch) -> None:
        self._hold(-len(batch.entries), -sum(batch.charges))

    def _mark_settled(self) -> None:
        # Entries from another run's spool carry sequence number 0 and hold up no flush.
        candidates = [self._dequeued + 1]
        for batch in (*self._in_flight, *self._retry):
            candidates.append(next((q for _, q in batch.entries if q), candidates[0]))
        candidates.append(self._outbox.first_own_seq() or candidates[0])
        if self._spool is not None and self._spool.rows:
            oldest = self._spool.oldest_own_seq()
            if oldest is not None:
                candidates.append(oldest)
        with self._settled:
            self._settled_through = min(candidates) - 1
            self._settled.notify_all()

    def _unstarted(self) -> bool:
        """Whether signals wait that no POST has started (retries included)."""
        return bool(self._retry or self._outbox or self._queue)

    def _abandon_remaining(self) -> None:
        """At shutdown, with nothing in flight: put away what is left, then stop."""
        self._put_away_unsent()
        self._posters.stop()
        if self._spool is not None:
            self._spool.close()

    def _put_away_unsent(self) -> None:
        """At shutdown: spool what is not sent and not in flight when a spool is configured,
        else count the loss."""
        taken_out, records = self._take_all()
        if self._spool is not None:
            self._spool.save_unsent(taken_out, self._encoded(records))
        else:
            count = len(taken_out) + len(records)
            if count:
                self._count_drop("shutdown", count)
                logger.warning(
                    "td_web: %d signals were still unsent when close() ran out of time and were "
                    "dropped (%s)",
                    count,
                    f"the last attempt failed: {self._last_error}"
                    if self._retry_at is not None or self._failing
                    else "the ingest server had not yet answered the batches in flight"
                    if self._in_flight
                    else "the ingest server answered, but not all of them in time",
                )
        self._mark_settled()

    def _spill_queue(self) -> None:
        """A long outage: move queued signals to disk so the queue can keep accepting.

        What waits for a retry goes first, so the spool stays oldest first; the backoff state
        stays, and the next attempt takes the same signals back from the spool.
        """
        assert self._spool is not None
        taken_out, records = self._take_all()
        self._spool.save(taken_out, front=True)
        self._spool.save(self._encoded(records))

    def _take_all(self) -> tuple[list[Entry], list[tuple[Record, int]]]:
        """Everything not yet sent and not in flight, out of the sender: the serialized
        entries taken out for sending (oldest first) and the queued records with their
        sequence numbers."""
        retry = sorted(self._retry, key=lambda batch: batch.entries[0][1])
        waiting, charged = self._outbox.clear()
        taken_out = [entry for batch in retry for entry in batch.entries] + waiting
        charged += sum(sum(batch.charges) for batch in retry)
        self._retry.clear()
        with self._lock:
            self._held_signals -= len(taken_out)
            self._held_bytes -= charged
            records = [record for record, _ in self._queue]
            self._queue.clear()
            self._queued_bytes = 0
            first = self._dequeued + 1
            self._dequeued += len(records)
        return taken_out, [(record, first + i) for i, record in enumerate(records)]

    def _encoded(self, records: list[tuple[Record, int]]) -> list[Entry]:
        return [entry for record, seq in records for entry in self._entries(record, seq)]

    def _entries(self, record: Record, seq: int) -> list[Entry]:
        """One record's serialized signals; a bug of ours in its expansion costs that record
        alone, not the others taken out of the queue with it (up to a batch, or all of it)."""
        try:
            return self._encoder.entries(record, seq)
        except Exception:
            return self._expansion_failed()

    def _expansion_failed(self) -> list[Entry]:
        """In an ``except`` block: a record that could not be expanded, logged and counted."""
        logger.exception("td_web: a queued record could not be expanded; dropped")
        self._count_drop("invalid", 1)
        return []

    def _open_spool(self) -> None:
        path = self._config.spool_path
        if path and self._spool is None:
            self._spool = Spool.open(
                path, self._url, self._config.spool_max_signals, self._count_drop
            )

    @property
    def _spooled(self) -> int:
        return self._spool.rows if self._spool is not None else 0

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
