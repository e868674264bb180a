"""The threads that POST batches, so that several can be in flight at once against a distant
ingest (one batch per round trip caps a process near ``max_batch_size`` per round trip).

The sender's worker decides what is sent, when and how often; a poster only sends one body
through its line of the transport (``Transport.line``: a client with one keep-alive connection
of its own) and hands the :class:`Answer` back. So every decision
about a batch (retry, split, drop, pause) stays on the worker's thread, without locks.
Posters start only when that many batches are in flight at once, are daemons like the worker,
and wait for work without a timer.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Generic, TypeVar

from ._transport import Answer, Transport

Job = TypeVar("Job")


class Posters(Generic[Job]):
    def __init__(self, transport: Transport, wake: threading.Event) -> None:
        self._transport = transport
        #: Set when an answer is ready: the worker waits on it for everything.
        self._wake = wake
        self._jobs: queue.SimpleQueue[tuple[Job, bytes] | None] = queue.SimpleQueue()
        self._answers: deque[tuple[Job, Answer]] = deque()
        self._threads: list[threading.Thread] = []

    def post(self, job: Job, body: bytes, in_flight: int) -> None:
        """Send ``body`` on a poster thread; ``in_flight`` (this one included) says how many
        threads are needed so that no body waits for another's answer."""
        if len(self._threads) < in_flight:
            thread = threading.Thread(
                target=self._run, args=(self._transport.line(),), name="td_web-poster", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._jobs.put((job, body))

    def answers(self) -> list[tuple[Job, Answer]]:
        """The answers that arrived since the last call, each with its job."""
        done = []
        while self._answers:
            done.append(self._answers.popleft())
        return done

    def stop(self) -> None:
        """Let every poster end once it is idle (none is mid-request when the worker stops)."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()

    def _run(self, line: Transport) -> None:
        while self._post_next(line):
            pass

    def _post_next(self, line: Transport) -> bool:
        # A function of its own: an idle poster must not keep its last body alive.
        work = self._jobs.get()
        if work is None:
            return False
        job, body = work
        # Transport.post never raises: every failure is an Answer.
        self._answers.append((job, line.post(body)))
        self._wake.set()
        return True
