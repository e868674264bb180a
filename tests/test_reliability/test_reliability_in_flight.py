"""Several batches in flight at once (``max_in_flight``, issue #14 goal 4), against the real
loopback ingest: the server holds each answer until the test releases it, so "N requests held
at once" is N batches in flight, without timing."""

from __future__ import annotations

import contextlib
import inspect
import linecache
import os
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APP_ID, run_python, wait_until
from ingest_server import IngestServer, Reply

from td_web import TelemetryDeck

FAST = {"flush_interval": 3600, "initial_backoff": 0.01, "max_backoff": 0.05}


@pytest.fixture
def make_client(ingest: IngestServer) -> Iterator[Any]:
    clients: list[TelemetryDeck] = []

    def make(**options: Any) -> TelemetryDeck:
        client = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, **{**FAST, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1)


@pytest.fixture
def release(ingest: IngestServer) -> Iterator[threading.Event]:
    """Every answer is held until this is set (set at the end, so nothing stays stuck)."""
    event = threading.Event()
    ingest.default = Reply(until=event)
    yield event
    event.set()


def send(td: TelemetryDeck, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        assert td.signal("In.flight", {"i": i})


def assert_each_once(ingest: IngestServer, count: int) -> None:
    received = [int(s["payload"]["i"]) for s in ingest.accepted_signals]
    twice = [i for i, n in Counter(received).items() if n > 1]
    assert twice == [], f"delivered twice: {twice[:10]}"
    assert sorted(received) == list(range(count))


def test_full_batches_are_in_flight_at_once_up_to_max_in_flight(
    ingest: IngestServer, make_client: Any, release: threading.Event
) -> None:
    td = make_client(max_batch_size=10, max_in_flight=4)
    send(td, 80)  # eight full batches
    held = ingest.wait_for_requests(4)
    assert all(len(r.batch) == 10 for r in held)  # four POSTs open at once, none answered
    assert td.flush(0.3) is False  # the others wait: the bound holds while all are held
    assert len(ingest.requests) == 4
    assert td.stats().pending == 80
    release.set()
    assert td.flush(10)
    assert len(ingest.requests) == 8
    assert_each_once(ingest, 80)


def test_flush_returns_only_when_every_batch_in_flight_is_answered(
    ingest: IngestServer, make_client: Any, release: threading.Event
) -> None:
    td = make_client(max_batch_size=10, max_in_flight=4)
    send(td, 35)  # three full batches in flight, the part batch goes with the flush
    ingest.wait_for_requests(3)
    assert td.flush(0.2) is False
    release.set()
    assert td.flush(10)
    # Nothing waited for: flush() returned True only once all were accepted.
    assert len(ingest.accepted_signals) == 35
    assert_each_once(ingest, 35)


@pytest.mark.parametrize(
    "fault",
    [
        Reply(status=500),
        Reply(status=429, headers={"Retry-After": "0"}),
        Reply(reset=True),
        Reply(status=503, delay=0.05),
    ],
    ids=["500", "429", "reset", "slow-503"],
)
def test_failed_posts_in_flight_together_are_retried_as_the_same_batches(
    ingest: IngestServer, make_client: Any, fault: Reply
) -> None:
    # Every third request fails while others are in flight beside it.
    ingest.script(*[fault if n % 3 == 0 else Reply(delay=0.02) for n in range(30)])
    td = make_client(max_batch_size=10, max_in_flight=8)
    send(td, 300)
    assert td.flush(30)
    assert_each_once(ingest, 300)
    failed = [r for r in ingest.requests if not r.reply.accepted]
    assert failed, "no fault was injected"
    # A failed batch is sent again whole, never split into parts or merged with others.
    accepted = {
        tuple(s["payload"]["i"] for s in r.batch) for r in ingest.requests if r.reply.accepted
    }
    for request in failed:
        assert tuple(s["payload"]["i"] for s in request.batch) in accepted


def test_a_retry_after_pauses_every_post_not_just_one(
    ingest: IngestServer, make_client: Any, release: threading.Event
) -> None:
    ingest.script(Reply(status=429, headers={"Retry-After": "1"}))
    td = make_client(max_batch_size=10, max_in_flight=4)
    send(td, 80)
    first, *_held = ingest.wait_for_requests(4)  # the first answered 429, three held
    release.set()
    assert td.flush(20)
    assert_each_once(ingest, 80)
    later = ingest.requests[4:]
    assert len(later) == 5  # the 429'd batch again, and the four that waited
    # No POST at all started within the second the ingest asked for (a lower bound: load
    # can only make it later).
    assert all(r.received_at - first.received_at >= 1.0 for r in later)


def test_close_drains_what_is_queued_over_several_connections(
    ingest: IngestServer, make_client: Any
) -> None:
    ingest.default = Reply(delay=0.1)  # an ingest 100 ms away
    td = make_client(max_batch_size=10, max_in_flight=8)
    send(td, 400)
    assert td.close(30)
    assert_each_once(ingest, 400)
    assert td.stats().pending == 0


def test_posters_that_start_together_each_build_one_client_and_close_it(
    ingest: IngestServer, make_client: Any, release: threading.Event, monkeypatch: Any
) -> None:
    # Each poster posts through a client of its own with one keep-alive connection (one
    # shared pool of max_in_flight connections cost a sixth of every POST). Posters that start
    # together must each build exactly one (none left behind unclosed), the worker builds none
    # (before the first POST it readies only the library and the TLS context the posters
    # share), and close() closes them all. A poster that builds one waits here for a second, so two
    # building at once always meet (no timing involved).
    from td_web._transport import http_library

    library = http_library()
    built: list[tuple[str, int, Any]] = []
    posters_meet = threading.Barrier(2, timeout=10)

    class CountedClient(library.Client):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if threading.current_thread().name == "td_web-poster":
                with contextlib.suppress(threading.BrokenBarrierError):
                    posters_meet.wait()
            super().__init__(*args, **kwargs)
            built.append((threading.current_thread().name, threading.get_ident(), self))

    monkeypatch.setattr(library, "Client", CountedClient)
    td = make_client(max_batch_size=10, max_in_flight=4)
    send(td, 40)  # four full batches, posted at once by four new posters
    ingest.wait_for_requests(4)
    release.set()
    assert td.flush(10)
    assert_each_once(ingest, 40)
    builders = sorted(name for name, _, _ in built)
    assert builders == ["td_web-poster"] * 4, f"HTTP clients built by {built}"
    assert len({thread for _, thread, _ in built}) == 4  # one each, on four threads
    assert td.close(5)
    assert all(client.is_closed for _, _, client in built)


def test_after_the_close_deadline_the_worker_waits_for_answers_without_spinning(
    ingest: IngestServer, make_client: Any, release: threading.Event, monkeypatch: Any
) -> None:
    # close() gave up with batches in flight and more waiting: nothing more may start, so
    # the worker has only answers to wait for. It must wait for them (no timer), not ask
    # for a zero timeout again and again (a thread spinning in the host process until the
    # last POST returns, up to `timeout`).
    first = threading.Event()
    ingest.script(Reply(until=first))  # the others are held until the test ends
    td = make_client(max_batch_size=10, max_in_flight=2)
    send(td, 40)  # two batches in flight, two waiting
    ingest.wait_for_requests(2)
    assert td.close(0.1) is False
    sender = td._sender
    real_wait_time = sender._wait_time
    after_answer: list[float | None] = []
    asked = threading.Event()

    def wait_time(last_pump: float) -> float | None:
        timeout = real_wait_time(last_pump)
        if sender._sent and not asked.is_set():  # the first answer has been taken in
            after_answer.append(timeout)
            asked.set()
        return timeout

    monkeypatch.setattr(sender, "_wait_time", wait_time)
    first.set()  # one batch answered: one still in flight, two that will never start
    assert asked.wait(10)
    assert after_answer == [None]


def test_what_never_started_by_the_close_deadline_is_spooled_without_waiting_for_answers(
    ingest: IngestServer, make_client: Any, release: threading.Event, tmp_path: Path
) -> None:
    # At exit close() gives up at its deadline and the process ends, answers or not: what no
    # POST has started must be on disk by then, not only once the last batch in flight is
    # answered (which may be after the exit, and then those signals are lost uncounted).
    spool = str(tmp_path / "spool.db")
    td = make_client(max_batch_size=10, max_in_flight=2, spool_path=spool)
    send(td, 40)  # two batches in flight (held), two that never start
    ingest.wait_for_requests(2)
    assert td.close(0.1) is False
    wait_until(lambda: td.stats().spooled == 20)  # the in-flight ones are still unanswered
    assert len(ingest.requests) == 2
    release.set()  # the two batches in flight are delivered after all
    td._sender._thread.join(10)
    assert td.stats().sent == 20
    assert td.stats().dropped == {}
    # The next run sends what was spooled: every signal arrives, each once.
    again = make_client(spool_path=spool, flush_interval=0.05)
    wait_until(lambda: again.stats().spooled == 0 and len(ingest.accepted_signals) == 40)
    assert_each_once(ingest, 40)


def child_delivers_its_own(
    pid: int, td: TelemetryDeck, fresh: Callable[[], bool] = lambda: True
) -> None:
    """After a fork: the child (``pid`` 0) finds its sender ``fresh``, sends one signal and
    exits 0 only when that one was delivered; the parent asserts that exit."""
    if pid == 0:
        code = 1
        try:
            if fresh():
                td.signal("From.child", {"i": 1000})
                code = 0 if td.flush(10) and td.stats().sent == 1 else 2
        finally:
            os._exit(code)
    ended: list[int] = []

    def child_ended() -> bool:
        waited, status = os.waitpid(pid, os.WNOHANG)
        if waited:
            ended.append(status)
        return bool(waited)

    try:
        wait_until(child_ended, timeout=60)
    except AssertionError:
        os.kill(pid, 9)  # a hung child would hang the whole suite: ended, and the test fails
        os.waitpid(pid, 0)
        raise
    assert os.waitstatus_to_exitcode(ended[0]) == 0


def td_web_threads_parked() -> bool:
    """Whether every td_web thread of this process waits on its own condition (blocked, not
    running and not queued for the interpreter lock). A fork without Python's fork hooks
    copies the lock's state as it is: a thread queued for it in the parent leaves a waiter
    behind that no thread of the child will ever be, and the child hangs in its first
    hand-off of the lock. So such a fork is made only once td_web's threads are parked."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        if thread.name.startswith("td_web-") and thread.ident is not None:
            frame = frames.get(thread.ident)
            if frame is None:
                return False
            code = frame.f_code
            line = linecache.getline(code.co_filename, frame.f_lineno)
            # The worker waits on a Condition; a poster in its queue's get() (a C call).
            if code.co_name != "wait" and ".get()" not in line:
                return False
    return True


# Forking while threads run is what this test is about (Python 3.12+ warns of it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_nothing_in_flight(
    ingest: IngestServer, make_client: Any
) -> None:
    release = threading.Event()
    ingest.script(*[Reply(until=release) for _ in range(4)])
    td = make_client(max_batch_size=10, max_in_flight=4)
    send(td, 40)
    ingest.wait_for_requests(4)  # the parent's four batches are held in flight
    # The child: none of the parent's batches, posters or pauses.
    child_delivers_its_own(os.fork(), td, lambda: td.stats().pending == td.stats().queued == 0)
    release.set()
    assert td.flush(10)
    received = Counter(int(s["payload"]["i"]) for s in ingest.accepted_signals)
    assert received == Counter([*range(40), 1000])  # each exactly once


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_forked_without_pythons_fork_hooks_still_sends(ingest: IngestServer) -> None:
    """uWSGI forks its workers with the C library's fork() and, by default, never calls
    PyOS_AfterFork_Child, so no ``os.register_at_fork`` hook runs in them; with the app loaded
    in the master (``lazy-apps = false``, docs/deployment.md) a worker inherits a sender whose
    thread the master had started. The worker's signals must still go, from a thread of its own.

    The master is a fresh interpreter whose only other threads are td_web's, parked before the
    fork: a thread of the test process (a server of another fixture, polling) queued for the
    interpreter lock at that moment would hang the child in CPython itself."""
    master = run_python(
        f"""
        import ctypes, linecache, os, sys, threading, time, types

        uwsgi = types.ModuleType("uwsgi")  # what uWSGI injects into the processes it runs
        uwsgi.opt = {{"enable-threads": True}}
        sys.modules["uwsgi"] = uwsgi
        from td_web import TelemetryDeck

        td = TelemetryDeck(app_id={APP_ID!r}, endpoint={ingest.url!r}, max_batch_size=10,
                           **{FAST!r})
        for i in range(5):
            assert td.signal("In.flight", {{"i": i}})
        assert td.flush(10)  # the master's sender thread runs
        {textwrap.indent(inspect.getsource(td_web_threads_parked), " " * 8).lstrip()}
        while not td_web_threads_parked():
            time.sleep(0.01)
        fork_in_c = ctypes.PyDLL(None).fork  # PyDLL: called holding the GIL, as uWSGI's fork
        fork_in_c.restype = ctypes.c_int
        pid = fork_in_c()  # a child which no fork hook has told
        if pid == 0:
            code = 1
            try:
                td.signal("From.child", {{"i": 1000}})
                code = 0 if td.flush(10) and td.stats().sent == 1 else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                print("the child hung")
                sys.exit(3)
            time.sleep(0.01)
        print("child", os.waitstatus_to_exitcode(waited[1]))
        td.close(5)
        """
    )
    assert master.stdout.strip() == "child 0", master.stdout + master.stderr
    received = Counter(int(s["payload"]["i"]) for s in ingest.accepted_signals)
    assert received == Counter([*range(5), 1000])  # each exactly once


def test_a_worker_waiting_for_an_answer_is_not_woken_by_each_signal(
    ingest: IngestServer, make_client: Any, release: threading.Event
) -> None:
    td = make_client(max_batch_size=10, max_in_flight=1)
    send(td, 10)  # one full batch, which the ingest holds: nothing more may start
    ingest.wait_for_requests(1)
    wake = td._sender._wake
    send(td, 12, start=10)  # the first record and the tenth wake it once more each
    wait_until(lambda: not wake.is_set())  # it looked, could start nothing, and waits again
    send(td, 1, start=22)
    # Main woke it for every record past a full batch: a pass each that could start nothing.
    assert not wake.is_set()
    release.set()
    assert td.flush(10)
    assert_each_once(ingest, 23)


def _fork_generation(td: TelemetryDeck, parent_worker: object, start: int, generations: int) -> int:
    """In a forked child: the exit code saying whether this generation (and the ones it forks
    in turn) put its signals into a sender of its own and delivered them."""
    sender = td._sender
    # The fork hook (not a pid check in put()) left nothing of the parent's: no thread,
    # nothing queued, held or in flight.
    if sender._thread is not None or td.stats().queued or td.stats().pending:
        return 2
    send(td, 25, start)
    if sender._thread is None or sender._thread is parent_worker:
        return 3
    if generations > 1:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _fork_generation(td, sender._thread, start + 100, generations - 1)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return os.waitstatus_to_exitcode(status)
    return 0 if td.flush(10) and td.stats().sent == 25 else 4


# Forking while threads run is what this test is about (Python 3.12+ warns of it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_each_forked_generation_puts_into_a_new_sender_of_its_own(
    ingest: IngestServer, make_client: Any
) -> None:
    td = make_client(max_batch_size=10)
    send(td, 25)  # two full batches start at once; five signals wait for the interval
    ingest.wait_for_requests(2)
    pid = os.fork()
    if pid == 0:  # a child, which forks a grandchild while its own sender runs
        code = 1
        try:
            code = _fork_generation(td, td._sender._thread, 100, generations=2)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert td.flush(10)
    received = Counter(int(s["payload"]["i"]) for s in ingest.accepted_signals)
    # Each signal once, from the process that put it: none lost, none sent twice.
    assert received == Counter([*range(25), *range(100, 125), *range(200, 225)])


@pytest.mark.parametrize("value", [0, -1, 65, True, "4", 2.0])
def test_max_in_flight_is_validated(value: object) -> None:
    from td_web import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_in_flight"):
        TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9", max_in_flight=value)
