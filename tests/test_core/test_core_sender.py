from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from conftest import APP_ID, run_python
from ingest_server import IngestServer, Reply, free_port

from td_web import TelemetryDeck, __version__
from td_web._batches import Outbox
from td_web._config import HTTP_CLIENTS
from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

FAST = {"flush_interval": 0.05, "initial_backoff": 0.01, "max_backoff": 0.05}


@pytest.fixture
def make_client(ingest: IngestServer) -> Iterator[Any]:
    clients: list[TelemetryDeck] = []

    def make(**options: Any) -> TelemetryDeck:
        merged = {"app_id": APP_ID, "salt": "pepper", "endpoint": ingest.url, **FAST, **options}
        client = TelemetryDeck(**merged)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1)


def test_wire_shape(ingest: IngestServer, make_client: Any) -> None:
    td = make_client(default_payload={"App.flavor": "blue", "Shared": "default"}, test_mode=True)
    td.signal(
        "Checkout.completed",
        {"Cart.items": 3, "Shared": "mine"},
        client_user="user-42",
        session_id="s-1",
        float_value=19.99,
    )
    assert td.flush(5)
    (request,) = ingest.requests
    assert request.path == "/v2/"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["User-Agent"].startswith(f"td_web/{__version__}")
    body = json.loads(request.raw)
    assert isinstance(body, list)
    (signal,) = body
    assert set(signal) == {
        "appID",
        "clientUser",
        "type",
        "sessionID",
        "isTestMode",
        "payload",
        "floatValue",
    }
    # floatValue in both places (wire contract: payload; TelemetryDeck's docs: top level).
    assert signal["floatValue"] == signal["payload"]["floatValue"] == 19.99
    assert signal["appID"] == APP_ID
    assert signal["type"] == "Checkout.completed"
    assert signal["sessionID"] == "s-1"
    assert signal["isTestMode"] is True
    # clientUser is the salted hash, never the raw id.
    from td_web import hash_client_user

    assert signal["clientUser"] == hash_client_user("user-42", "pepper")
    assert "user-42" not in request.raw.decode()
    payload = signal["payload"]
    assert {key for key in payload if key.startswith("TelemetryDeck.Calendar.")}
    assert {k: v for k, v in payload.items() if not k.startswith("TelemetryDeck.Calendar.")} == {
        "TelemetryDeck.SDK.name": "td_web",
        "TelemetryDeck.SDK.version": __version__,
        "TelemetryDeck.SDK.nameAndVersion": f"td_web {__version__}",
        "App.flavor": "blue",
        "Shared": "mine",
        "Cart.items": "3",
        "floatValue": 19.99,
    }


def test_namespace_changes_the_path(ingest: IngestServer, make_client: Any) -> None:
    td = make_client(namespace="com.example")
    td.signal("A.b")
    assert td.flush(5)
    assert ingest.requests[0].path == "/v2/namespace/com.example/"


def test_signal_without_user_gets_a_stable_hashed_anonymous_id(
    ingest: IngestServer, make_client: Any
) -> None:
    td = make_client()
    td.signal("A.one")
    td.signal("A.two")
    assert td.flush(5)
    first, second = ingest.accepted_signals
    assert first["clientUser"] == second["clientUser"]
    assert len(first["clientUser"]) == 64
    assert first["sessionID"] == second["sessionID"]


def test_batches_hold_at_most_max_batch_size(ingest: IngestServer, make_client: Any) -> None:
    td = make_client(flush_interval=30)
    for i in range(250):
        td.signal("Bulk.item", {"i": i})
    assert td.flush(10)
    assert all(len(batch) <= 100 for batch in ingest.accepted_batches)
    received = sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals)
    assert received == list(range(250))
    stats = td.stats()
    assert stats.sent == 250 and stats.queued == 250 and stats.pending == 0


def test_full_batch_is_sent_without_waiting_for_the_interval(
    ingest: IngestServer, make_client: Any
) -> None:
    td = make_client(flush_interval=3600, max_batch_size=10)
    for i in range(10):
        td.signal("Bulk.item", {"i": i})
    # No flush(): a full batch alone wakes the sender.
    assert len(ingest.wait_for_signals(10)) == 10


class ProducingTransport(httpx.HTTPTransport):  # type: ignore[misc,name-defined]
    """The real transport to the real ingest; while the first batch is in flight, more
    signals arrive (a producer slower than the sender), and ``answered`` is set once the
    ingest has answered it."""

    def __init__(self, arriving: int) -> None:
        super().__init__()
        self.client: TelemetryDeck | None = None
        self.arriving = arriving
        self.answered = threading.Event()

    def handle_request(self, request: Any) -> Any:
        first = not self.answered.is_set()
        if first and self.client is not None:
            for i in range(self.arriving):
                self.client.signal("Load.item", {"i": 100 + i})
        response = super().handle_request(request)
        # Read here, so that the sender does no more I/O (and keeps the interpreter) between
        # this answer and deciding what to send next.
        response.read()
        self.answered.set()
        return response


def test_under_sustained_load_every_post_carries_a_full_batch(
    ingest: IngestServer, make_client: Any
) -> None:
    # Issue #14 goal 3: signals that arrive while a batch is in flight wait for a full batch
    # (or the interval, or a flush) instead of going out as whatever is there when it returns.
    transport = ProducingTransport(arriving=30)
    td = transport.client = make_client(flush_interval=3600, transport=transport)
    for i in range(100):
        td.signal("Load.item", {"i": i})
    assert transport.answered.wait(10)
    for i in range(130, 1000):
        td.signal("Load.item", {"i": i})
    assert td.flush(30)
    assert [len(batch) for batch in ingest.accepted_batches] == [100] * 10
    received = sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals)
    assert received == list(range(1000))


def test_a_part_batch_goes_when_the_interval_is_over(
    ingest: IngestServer, make_client: Any
) -> None:
    td = make_client(flush_interval=0.2)
    for i in range(130):
        td.signal("Trickle.item", {"i": i})
    # No flush(): the full batch goes at once, the rest when the interval ends.
    assert len(ingest.wait_for_signals(130)) == 130
    assert sorted(len(batch) for batch in ingest.accepted_batches) == [30, 100]


def test_batches_are_capped_by_bytes(ingest: IngestServer, make_client: Any) -> None:
    td = make_client(max_batch_bytes=8192, flush_interval=30)
    for i in range(30):
        td.signal("Big.one", {"blob": "x" * 1000, "i": i})
    assert td.flush(10)
    assert len(ingest.requests) >= 4
    assert all(len(r.raw) <= 8192 for r in ingest.requests)
    assert len(ingest.accepted_signals) == 30


def test_an_outbox_is_taken_whole_when_it_fits_and_entry_by_entry_when_not() -> None:
    entries = [(b'{"i":%d}' % i, i + 1) for i in range(10)]  # 7 bytes each
    whole_body = 2 + 10 * 7 + 9  # brackets, entries, commas
    for max_bytes in range(whole_body - 10, whole_body + 3):
        outbox = Outbox()
        outbox.add_records([([entry], 100) for entry in entries])
        batch = outbox.take_batch(100, max_bytes)
        # As entry by entry: as many as fit (brackets, entries, commas), never more.
        fitting = max(n for n in range(1, 11) if 2 + n * 7 + n - 1 <= max_bytes)
        assert batch.entries == entries[:fitting] and len(batch.body()) <= max_bytes
        assert fitting == 10 or len(batch.body()) + 8 > max_bytes  # one more would not fit
        assert batch.charges == [100] * fitting
        assert outbox.take_batch(100, max_bytes).entries == entries[fitting:]
    outbox = Outbox()
    outbox.add_records([(entries, 95), ([], 50)])  # one record, ten signals; one, none
    by_count = outbox.take_batch(4, whole_body + 1)
    assert by_count.entries == entries[:4] and by_count.charges == [9, 9, 9, 9]
    rest = outbox.take_batch(100, whole_body + 1)
    assert rest.entries == entries[4:] and sum(rest.charges) == 95 - 36 and len(outbox) == 0


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_until_delivered(
    status: int, ingest: IngestServer, make_client: Any
) -> None:
    ingest.script(Reply(status=status), Reply(status=status))
    td = make_client()
    for i in range(5):
        td.signal("Retry.me", {"i": i})
    assert td.flush(10)
    assert len(ingest.requests) == 3
    assert sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals) == list(range(5))
    stats = td.stats()
    assert stats.retried == 10 and stats.sent == 5 and stats.dropped == {}
    assert f"HTTP {status}" in (stats.last_error or "")


def test_connection_reset_is_retried(ingest: IngestServer, make_client: Any) -> None:
    ingest.script(Reply(reset=True))
    td = make_client()
    td.signal("Reset.me")
    assert td.flush(10)
    assert [s["type"] for s in ingest.accepted_signals] == ["Reset.me"]
    assert td.stats().retried == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_rejected_batches_are_dropped_with_one_error(
    status: int, ingest: IngestServer, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ingest.script(Reply(status=status, body='{"reason":"nope"}'))
    td = make_client()
    for _ in range(3):
        td.signal("Bad.batch")
    assert td.flush(5)
    td.signal("Later.fine")
    assert td.flush(5)
    assert [s["type"] for s in ingest.accepted_signals] == ["Later.fine"]
    assert td.stats().dropped == {"rejected": 3}
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert f"HTTP {status}" in errors[0].getMessage()
    assert "batch of 3 signals" in errors[0].getMessage()
    assert "nope" in errors[0].getMessage()


def test_retry_after_is_honoured(ingest: IngestServer, make_client: Any) -> None:
    ingest.script(Reply(status=429, headers={"Retry-After": "1"}))
    td = make_client()
    td.signal("Slow.down")
    assert td.flush(10)
    first, second = ingest.wait_for_requests(2)
    # The policy's computed delay never undercuts Retry-After; here it is asserted as the
    # interval between the two arrivals (a lower bound, so scheduling noise cannot fail it).
    assert second.received_at - first.received_at >= 1.0


def test_413_splits_the_batch_and_sends_both_halves(ingest: IngestServer, make_client: Any) -> None:
    ingest.script(Reply(status=413))
    td = make_client(flush_interval=30)
    for i in range(8):
        td.signal("Split.me", {"i": i})
    assert td.flush(10)
    sizes = [len(r.batch) for r in ingest.requests]
    assert sizes == [8, 4, 4]
    assert sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals) == list(range(8))


def test_413_on_a_single_signal_drops_it(ingest: IngestServer, make_client: Any) -> None:
    ingest.script(Reply(status=413))
    td = make_client()
    td.signal("Too.big")
    assert td.flush(5)
    assert td.stats().dropped == {"too_large": 1}
    td.signal("Fine")
    assert td.flush(5)
    assert [s["type"] for s in ingest.accepted_signals] == ["Fine"]


def test_full_queue_drops_new_signals_counts_and_warns_once(
    ingest: IngestServer, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ingest.default = Reply(blackhole=True)
    td = make_client(max_queue_size=10, max_batch_size=5, timeout=30)
    accepted = [td.signal("Flood", {"i": i}) for i in range(50)]
    stats = td.stats()
    assert stats.queued + stats.dropped["queue_full"] == 50
    assert accepted.count(True) == stats.queued
    # At most one batch can have left the queue for the (stuck) sender.
    assert 10 <= stats.queued <= 15
    assert caplog.text.count("send queue is full") == 1
    ingest.default = Reply()


def test_flush_times_out_when_the_ingest_is_down(make_client: Any) -> None:
    td = make_client(endpoint=f"http://127.0.0.1:{free_port()}")
    td.signal("Nobody.home")
    assert td.flush(timeout=0.3) is False
    assert td.stats().retried >= 1
    assert "ConnectError" in (td.stats().last_error or "")


def test_outage_shorter_than_the_queue_loses_nothing(make_client: Any) -> None:
    port = free_port()
    td = make_client(endpoint=f"http://127.0.0.1:{port}")
    for i in range(20):
        td.signal("During.outage", {"i": i})
    assert td.flush(timeout=0.2) is False
    server = IngestServer(port=port).start()
    try:
        assert td.flush(timeout=10)
        received = sorted(int(s["payload"]["i"]) for s in server.accepted_signals)
        assert received == list(range(20))
    finally:
        server.stop()


def test_close_flushes_and_later_signals_are_dropped(
    ingest: IngestServer, make_client: Any
) -> None:
    td = make_client(flush_interval=3600)
    td.signal("Before.close")
    assert td.close(timeout=5)
    assert [s["type"] for s in ingest.accepted_signals] == ["Before.close"]
    assert td.signal("After.close") is False
    assert td.stats().dropped == {"closed": 1}


def test_close_gives_up_after_its_timeout_and_counts_the_loss(make_client: Any) -> None:
    td = make_client(endpoint=f"http://127.0.0.1:{free_port()}")
    td.signal("Lost")
    started = time.monotonic()
    assert td.close(timeout=0.5) is False
    assert time.monotonic() - started < 5
    assert td.stats().dropped == {"shutdown": 1}


def test_context_manager_closes(ingest: IngestServer) -> None:
    with TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, flush_interval=3600) as td:
        td.signal("In.block")
    assert [s["type"] for s in ingest.accepted_signals] == ["In.block"]


def test_sync_mode_sends_inline(ingest: IngestServer, make_client: Any) -> None:
    td = make_client(sync=True)
    assert td.signal("Right.now") is True
    assert [s["type"] for s in ingest.accepted_signals] == ["Right.now"]
    ingest.script(Reply(status=503))
    assert td.signal("Fails.once") is False
    assert td.stats().dropped == {"send_failed": 1}


def test_injectable_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    td = TelemetryDeck(
        app_id=APP_ID, endpoint="https://ingest.invalid", transport=httpx.MockTransport(handler)
    )
    td.signal("Via.transport")
    assert td.flush(5)
    td.close()
    assert str(seen[0].url) == "https://ingest.invalid/v2/"
    assert json.loads(seen[0].content)[0]["type"] == "Via.transport"


def test_many_threads_lose_and_duplicate_nothing(ingest: IngestServer, make_client: Any) -> None:
    td = make_client()

    def send(thread: int) -> None:
        for i in range(200):
            td.signal("Concurrent", {"id": f"{thread}-{i}"})

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert td.flush(20)
    ids = [s["payload"]["id"] for s in ingest.accepted_signals]
    assert len(ids) == 1600
    assert len(set(ids)) == 1600


def run_script(code: str, ingest: IngestServer) -> subprocess.CompletedProcess[str]:
    return run_python(code, TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_ENDPOINT=ingest.url)


def test_atexit_delivers_what_is_queued(ingest: IngestServer) -> None:
    result = run_script(
        """
        from td_web import TelemetryDeck
        td = TelemetryDeck(flush_interval=3600)
        for i in range(5):
            td.signal("At.exit", {"i": i})
        # no flush, no close: the interpreter's exit must deliver them
        """,
        ingest,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals) == list(range(5))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_delivers_its_own_signals_once(ingest: IngestServer) -> None:
    result = run_script(
        """
        import os, sys
        from td_web import TelemetryDeck
        td = TelemetryDeck(flush_interval=3600)
        td.signal("Parent.before.fork")
        pid = os.fork()
        if pid == 0:
            td.signal("Child.signal")
            ok = td.flush(10)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        td.signal("Parent.after.fork")
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        ingest,
    )
    assert result.returncode == 0, result.stderr
    types = sorted(s["type"] for s in ingest.accepted_signals)
    assert types == ["Child.signal", "Parent.after.fork", "Parent.before.fork"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_holds_the_lock_does_not_deadlock(
    ingest: IngestServer,
) -> None:
    result = run_script(
        """
        import os, sys, threading
        from td_web import TelemetryDeck
        td = TelemetryDeck(flush_interval=3600)
        td.signal("Warm.up")
        held, release = threading.Event(), threading.Event()
        def hold():
            with td._sender._lock:
                held.set()
                release.wait()
        threading.Thread(target=hold, daemon=True).start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            td.signal("Child.after.locked.fork")
            os._exit(0 if td.flush(10) else 3)
        release.set()
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        ingest,
    )
    assert result.returncode == 0, result.stderr
    assert "Child.after.locked.fork" in [s["type"] for s in ingest.accepted_signals]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_client_the_user_closed_before_a_fork_stays_closed_in_the_child(
    ingest: IngestServer,
) -> None:
    """close() is the user's decision, and a forked child inherits it: the child's signal is
    refused and counted as sent after close, as in the parent; nothing reaches the ingest."""
    result = run_script(
        """
        import os, sys
        from td_web import TelemetryDeck
        td = TelemetryDeck(flush_interval=3600)
        td.signal("Parent.before.close")
        td.close(10)
        pid = os.fork()
        if pid == 0:
            refused = not td.signal("Child.after.close")
            closed = td.stats().dropped == {"closed": 1}
            os._exit(0 if refused and closed and td.flush(1) else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        ingest,
    )
    assert result.returncode == 0, result.stderr
    assert [s["type"] for s in ingest.accepted_signals] == ["Parent.before.close"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("exit_path", ["_shutdown.close_all_at_exit()", "begin_close_all()"])
def test_a_child_forked_after_the_exit_began_closing_its_sender_starts_fresh(
    ingest: IngestServer, exit_path: str
) -> None:
    """The process's exit path closing senders (drain at exit or SIGTERM; here done, or only
    begun, when another thread forks) is not the user's close: the child, a process of its
    own with a client nobody closed, starts with a fresh sender and delivers its signals."""
    result = run_script(
        """
        import os, sys
        from td_web import TelemetryDeck, _shutdown
        def begin_close_all():
            for sender in list(_shutdown.live_senders):
                sender.begin_close(drain=True)
        td = TelemetryDeck(flush_interval=3600)
        td.signal("Parent.before.exit")
        EXIT_PATH
        pid = os.fork()
        if pid == 0:
            queued = td.signal("Child.after.exit")
            os._exit(0 if queued and td.flush(10) and td.stats().sent == 1 else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """.replace("EXIT_PATH", exit_path),
        ingest,
    )
    assert result.returncode == 0, result.stderr
    types = sorted(s["type"] for s in ingest.accepted_signals)
    assert types == ["Child.after.exit", "Parent.before.exit"]


def test_a_mapping_that_raises_never_reaches_the_caller(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("boom")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("boom")

        def __len__(self) -> int:
            return 1

    td = make_client()
    assert td.signal("Not.sent", Exploding()) is False
    assert "signal('Not.sent') failed; dropped" in caplog.text
    td.signal("Still.works")
    assert td.flush(5)


async def test_sync_mode_inside_an_event_loop_warns(
    ingest: IngestServer, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    td = make_client(sync=True)
    assert td.signal("From.a.coroutine") is True
    assert "sync=True sends on the calling thread, here an event loop" in caplog.text


# -- issue #13: delivery hardening -------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "options", "flushes"),
    [
        pytest.param(Reply(status=429, headers={"Retry-After": "60"}), {}, 20, id="retry-after"),
        pytest.param(
            Reply(status=503),
            {"max_retries": 3, "initial_backoff": 30.0, "max_backoff": 60.0},
            7,
            id="backoff-with-max-retries",
        ),
    ],
)
def test_flush_never_makes_a_request_the_backoff_forbids(
    reply: Reply, options: dict[str, Any], flushes: int, ingest: IngestServer, make_client: Any
) -> None:
    ingest.default = reply
    td = make_client(**options)
    td.signal("Backing.off")
    ingest.wait_for_requests(1)
    # Each flush hurries the queue, never the wait the ingest (or the backoff) asked for.
    assert [td.flush(0.05) for _ in range(flushes)] == [False] * flushes
    assert len(ingest.requests) == 1
    stats = td.stats()
    assert stats.retried == 1  # only the real attempt counts
    assert stats.dropped == {}  # max_retries is not used up by flushes
    ingest.default = Reply()


def test_close_delivers_everything_accepted_while_it_runs_and_refuses_the_rest(
    ingest: IngestServer, make_client: Any
) -> None:
    ingest.default = Reply(delay=0.02)  # each batch takes a moment: close() runs for a while
    td = make_client(max_batch_size=20)
    started = threading.Event()
    accepted: list[int] = []

    def producer() -> None:
        # SIGTERM reaching a threaded server: requests still finishing while close() runs.
        for i in range(3000):
            if td.signal("During.close", {"i": i}):
                accepted.append(i)
            if i == 100:
                started.set()

    thread = threading.Thread(target=producer)
    thread.start()
    started.wait(10)
    assert td.close(timeout=30) is True
    thread.join()
    received = sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals)
    assert received == accepted
    stats = td.stats()
    assert "shutdown" not in stats.dropped
    assert stats.dropped.get("closed", 0) == 3000 - len(accepted)
    assert td.signal("After.close") is False


def test_close_that_runs_out_of_time_returns_false_and_says_why(
    ingest: IngestServer, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ingest.default = Reply(status=503)
    td = make_client(initial_backoff=30.0, max_backoff=60.0)
    td.signal("Never.accepted")
    ingest.wait_for_requests(1)
    assert td.close(timeout=0.2) is False
    assert td.stats().dropped == {"shutdown": 1}
    assert "the last attempt failed: HTTP 503" in caplog.text
    assert len(ingest.requests) == 1  # the backoff held through close() as well
    ingest.default = Reply()


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:abc", "http://[::1", "http://localhost:99999", "http://:80", "http://a b"],
)
def test_an_endpoint_that_cannot_be_sent_to_is_refused_at_configuration(endpoint: str) -> None:
    from td_web import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        TelemetryDeck(app_id=APP_ID, endpoint=endpoint)
    assert repr(endpoint) in str(raised.value)


class FailingTransport(httpx.BaseTransport):
    """The real transport to the real ingest, after ``failures`` unexpected errors."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.calls = 0
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise RuntimeError("a bug in the transport")
        return self._real.handle_request(request)


def test_an_unexpected_transport_error_is_a_counted_failure_with_backoff(
    ingest: IngestServer, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transport = FailingTransport(failures=2)
    td = make_client(transport=transport)
    td.signal("Despite.a.bug")
    assert td.flush(10)
    assert [s["type"] for s in ingest.accepted_signals] == ["Despite.a.bug"]
    stats = td.stats()
    assert stats.retried == 2 and stats.sent == 1
    assert "unexpected error in the sender" not in caplog.text
    assert caplog.text.count("raised RuntimeError: a bug in the transport") == 1


def test_a_transport_that_always_fails_lets_flush_time_out_honestly(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transport = FailingTransport(failures=None)
    td = make_client(transport=transport, initial_backoff=30.0, max_backoff=60.0)
    td.signal("Never.sent")
    assert td.flush(0.3) is False
    assert transport.calls == 1  # backoff, not a retry every time the worker wakes
    assert td.stats().retried == 1
    assert "RuntimeError: a bug in the transport" in (td.stats().last_error or "")
    assert "Traceback" not in caplog.text


def test_a_closed_client_drops_in_sync_mode_as_in_production(
    ingest: IngestServer, make_client: Any
) -> None:
    td = make_client(sync=True)
    assert td.signal("Before.close") is True
    assert td.close(1)
    assert td.signal("After.close") is False
    assert [s["type"] for s in ingest.accepted_signals] == ["Before.close"]
    assert len(ingest.requests) == 1
    assert td.stats().dropped == {"closed": 1}


def test_capture_does_not_record_a_closed_clients_signals(make_client: Any) -> None:
    from td_web.testing import capture

    td = make_client()
    with capture() as signals:
        assert td.signal("Before.close") is True
        td.close(1)
        assert td.signal("After.close") is False
    assert signals.types() == ["Before.close"]
    assert td.stats().dropped == {"closed": 1}


def test_the_queue_has_a_byte_budget(ingest: IngestServer, make_client: Any) -> None:
    ingest.default = Reply(blackhole=True)
    td = make_client(max_queue_bytes=1_000_000, max_batch_size=5, timeout=30)
    # An outage with large signals: 40 kB each, far fewer than max_queue_size.
    accepted = [td.signal("Big.one", {"blob": "x" * 40_000}) for _ in range(200)]
    stats = td.stats()
    assert accepted.count(True) == stats.queued
    # 1 MB holds about 25 such records; at most one batch of 5 left for the stuck sender.
    assert 20 <= stats.queued <= 31
    assert stats.dropped["queue_full"] == 200 - stats.queued
    ingest.default = Reply()


@pytest.mark.parametrize("value", [0, 100, -1, "a lot", 1.5])
def test_max_queue_bytes_is_validated(value: object) -> None:
    from td_web import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_queue_bytes"):
        TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9", max_queue_bytes=value)


# -- issue #19: the one seam between httpx2 and httpx ------------------------------------


@pytest.mark.parametrize("name", HTTP_CLIENTS)
def test_the_real_sender_delivers_through_each_installed_library(
    ingest: IngestServer, make_client: Any, name: str
) -> None:
    library = pytest.importorskip(name)
    td = make_client(http_client=name)
    for number in range(3):
        td.signal("Via.library", {"number": number})
    assert td.flush(5)
    assert td._sender._transport.library is library
    assert sorted(s["payload"]["number"] for s in ingest.accepted_signals) == ["0", "1", "2"]
    agent = ingest.requests[0].headers["User-Agent"]
    assert f"python-{name}/{library.__version__}" in agent
    # A transport built by the library (a subclass too) chooses it, whatever the option says.
    other = next(n for n in HTTP_CLIENTS if n != name)

    class Counting(library.HTTPTransport):  # type: ignore[name-defined,misc]
        calls = 0

        def handle_request(self, request: Any) -> Any:
            Counting.calls += 1
            return super().handle_request(request)

    given = make_client(transport=Counting(), namespace="com.given")
    given.signal("Via.given.transport")
    assert given.flush(5)
    assert given._sender._transport.library is library
    assert Counting.calls == 1
    assert other not in sys.modules or not isinstance(Counting(), sys.modules[other].BaseTransport)


def test_the_default_library_is_httpx2_when_it_is_installed_else_httpx(
    ingest: IngestServer, make_client: Any
) -> None:
    expected = "httpx2" if importlib.util.find_spec("httpx2") else "httpx"
    td = make_client()
    td.signal("Via.default")
    assert td.flush(5)
    assert td._sender._transport.library.__name__ == expected
    assert f"python-{expected}/" in ingest.requests[0].headers["User-Agent"]


@pytest.fixture
def httpx2_stand_in(monkeypatch: pytest.MonkeyPatch) -> Any:
    """httpx under the name httpx2 (same API): both "installed" where only httpx is."""
    import types

    real = pytest.importorskip("httpx")
    stand_in = types.ModuleType("httpx2")
    stand_in.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
    stand_in.__version__ = "2.0.0-stand-in"
    monkeypatch.setitem(sys.modules, "httpx2", stand_in)
    return stand_in


def test_the_sender_prefers_httpx2_when_both_are_installed(
    ingest: IngestServer, make_client: Any, httpx2_stand_in: Any
) -> None:
    td = make_client()
    td.signal("Via.httpx2")
    assert td.flush(5)
    assert td._sender._transport.library is httpx2_stand_in
    assert "python-httpx2/" in ingest.requests[0].headers["User-Agent"]


def test_the_http_client_option_and_a_given_transport_choose_the_library(
    ingest: IngestServer, make_client: Any, httpx2_stand_in: Any
) -> None:
    real = sys.modules["httpx"]
    chosen = make_client(http_client="httpx")
    chosen.signal("Via.httpx")
    assert chosen.flush(5)
    assert chosen._sender._transport.library is real
    # A transport from httpx means the httpx client, whatever else is installed.
    given = make_client(transport=real.HTTPTransport(), namespace="com.given")
    given.signal("Via.given.transport")
    assert given.flush(5)
    assert given._sender._transport.library is real
    assert all("python-httpx/" in r.headers["User-Agent"] for r in ingest.requests)


def test_a_transport_from_neither_library_is_refused() -> None:
    from td_web import ConfigurationError

    with pytest.raises(ConfigurationError, match="transport must be an httpx2 or httpx transport"):
        TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9", transport=object())


@pytest.mark.parametrize(("value", "why"), [("requests", "must be"), ("nohttp", "must be")])
def test_the_http_client_option_is_validated(value: str, why: str) -> None:
    from td_web import ConfigurationError

    with pytest.raises(ConfigurationError, match=f"http_client {why}"):
        TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9", http_client=value)


def test_no_module_needs_httpx_where_httpx2_is_the_one_installed() -> None:
    # httpx made unimportable: the CLI, the collector's tail and the demo load httpx2 (or
    # whatever is installed) through the transport seam, when they talk HTTP.
    code = "import sys; sys.modules['httpx'] = None; "
    code += "import td_web.cli, td_web.collector.tail, td_web.demo.site, td_web.demo.traffic"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_importing_td_web_imports_no_http_library() -> None:
    code = "import sys, td_web, td_web.flask, td_web.asgi, td_web.testing; "
    code += "print(sorted(m for m in sys.modules if m.startswith('httpx')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_batch_exactly_max_batch_bytes_long_goes_in_one_post(
    ingest: IngestServer, make_client: Any
) -> None:
    """``max_batch_bytes`` is what a POST's body may be at most: n signals take n - 1 commas
    and two brackets, so a batch that reaches the limit exactly is one POST, not cut early."""

    def send_all(td: TelemetryDeck) -> None:
        for i in range(8):
            td.signal("Exact.fit", {"blob": "x" * 200, "i": i}, session_id="s", client_user="u")
        assert td.flush(10)

    send_all(make_client(flush_interval=30))
    (whole,) = ingest.requests
    limit = len(whole.raw)  # the eight signals' body, measured with room to spare
    ingest.requests.clear()
    send_all(make_client(flush_interval=30, max_batch_bytes=limit))
    (exact,) = ingest.requests
    assert len(exact.raw) == limit and len(json.loads(exact.raw)) == 8
