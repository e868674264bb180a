"""Ingest faults, each injected by a real loopback server: callers never block, memory stays
bounded, and everything is delivered exactly once when the ingest recovers."""

from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer, Reply, free_port

from td_web import TelemetryDeck

FAST = {"flush_interval": 0.02, "initial_backoff": 0.01, "max_backoff": 0.05}


def ids(server: IngestServer) -> list[int]:
    return [int(s["payload"]["i"]) for s in server.accepted_signals]


def assert_each_once(server: IngestServer, count: int) -> None:
    received = ids(server)
    duplicates = [i for i, n in Counter(received).items() if n > 1]
    assert duplicates == [], f"delivered twice: {duplicates[:10]}"
    assert sorted(received) == list(range(count))


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param([Reply(status=500), Reply(status=502), Reply(status=503)], id="5xx"),
        pytest.param([Reply(status=504)] * 3, id="504"),
        pytest.param([Reply(status=429)] * 2, id="429-without-retry-after"),
        pytest.param([Reply(status=429, headers={"Retry-After": "0"})] * 2, id="429-retry-after"),
        pytest.param([Reply(reset=True)] * 2, id="reset-before-response"),
        pytest.param([Reply(reset_mid_response=True)] * 2, id="reset-mid-response"),
        pytest.param([Reply(status=413)], id="413"),
        pytest.param(
            [Reply(status=503), Reply(reset=True), Reply(status=500), Reply(status=429)],
            id="flapping-statuses",
        ),
    ],
)
def test_faults_recover_with_every_signal_delivered_once(
    fault: list[Reply], ingest: IngestServer
) -> None:
    ingest.script(*fault)
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, max_batch_size=10, **FAST)
    for i in range(40):
        assert td.signal("Fault.test", {"i": i})
    assert td.flush(15)
    td.close(1)
    assert_each_once(ingest, 40)


def test_black_holed_ingest_never_blocks_callers_and_recovers(ingest: IngestServer) -> None:
    ingest.script(Reply(blackhole=True))
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, timeout=0.5, max_batch_size=10, **FAST)
    # The first batch hangs in the black hole while every call keeps returning at once:
    # were signal() to wait for the network, this loop would take 0.5 s per batch.
    for i in range(40):
        assert td.signal("Blackhole.test", {"i": i})
    ingest.wait_for_requests(1)
    assert td.stats().sent == 0
    assert td.flush(15)  # the timed-out batch is retried once the server answers again
    td.close(1)
    assert_each_once(ingest, 40)


def test_slow_ingest_delivers_once(ingest: IngestServer) -> None:
    ingest.script(Reply(delay=1.5), Reply(delay=1.0))
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, timeout=5, max_batch_size=10, **FAST)
    for i in range(30):
        td.signal("Slow.test", {"i": i})
    assert td.flush(20)
    td.close(1)
    assert_each_once(ingest, 30)
    assert td.stats().retried == 0


def test_ingest_going_down_and_up_repeatedly_loses_nothing() -> None:
    port = free_port()
    td = TelemetryDeck(app_id=APP_ID, endpoint=f"http://127.0.0.1:{port}", max_batch_size=5, **FAST)
    servers: list[IngestServer] = []
    sent = 0
    for _cycle in range(3):
        for _ in range(20):  # down: queued, retried
            td.signal("Flap.test", {"i": sent})
            sent += 1
        assert td.flush(0.1) is False
        server = IngestServer(port=port).start()  # up: drained
        servers.append(server)
        for _ in range(20):
            td.signal("Flap.test", {"i": sent})
            sent += 1
        assert td.flush(15)
        server.stop()
    td.close(0.2)
    received = [int(s["payload"]["i"]) for server in servers for s in server.accepted_signals]
    assert sorted(received) == list(range(sent))


def test_memory_stays_at_the_queue_cap_during_an_outage() -> None:
    td = TelemetryDeck(
        app_id=APP_ID, endpoint=f"http://127.0.0.1:{free_port()}", max_queue_size=1_000, **FAST
    )
    payload = {"Checkout.cart": "x" * 200}
    for _ in range(1_000):  # fill the queue first, then measure what more signals cost
        td.signal("Outage.fill", payload)
    # The sender imports its HTTP library at the first batch (httpx2 pulls in click and
    # pygments where they are installed): one-time module memory, not queue growth.
    deadline = time.monotonic() + 10
    while td.stats().last_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert td.stats().last_error is not None, "the sender never tried the refused endpoint"
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(20_000):
            td.signal("Outage.more", payload)
        # A failed attempt leaves its request body in a reference cycle (the HTTP library's
        # exception and request) until the cyclic collector runs: garbage, not growth.
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    stats = td.stats()
    assert stats.dropped.get("queue_full", 0) >= 19_000
    # 20,000 more signals did not grow memory by more than a few records' worth.
    assert grown < 256 * 1024, f"memory grew by {grown} bytes"
    td.close(0.1)


def test_threads_and_asyncio_tasks_sending_at_once_lose_and_duplicate_nothing(
    ingest: IngestServer,
) -> None:
    import asyncio

    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, **FAST)
    counter = iter(range(10**9))
    lock = threading.Lock()

    def next_id() -> int:
        with lock:
            return next(counter)

    async def task() -> None:
        for _ in range(50):
            td.signal("Concurrent", {"i": next_id()})
            await asyncio.sleep(0)

    async def many_tasks() -> None:
        await asyncio.gather(*(task() for _ in range(20)))

    def thread() -> None:
        asyncio.run(many_tasks())

    threads = [threading.Thread(target=thread) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert td.flush(20)
    td.close(1)
    assert_each_once(ingest, 4 * 20 * 50)


def test_signal_calls_stay_cheap_while_the_sender_is_stuck(ingest: IngestServer) -> None:
    """Structural check, not a timing assertion: a stuck sender holds no lock callers need."""
    ingest.default = Reply(blackhole=True)
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, timeout=60, max_batch_size=1, **FAST)
    td.signal("First")
    ingest.wait_for_requests(1)  # the sender is now inside a request that never returns
    done = threading.Event()

    def caller() -> None:
        for i in range(500):
            td.signal("While.stuck", {"i": i})
        done.set()

    threading.Thread(target=caller, daemon=True).start()
    assert done.wait(10), "signal() blocked behind the stuck sender"
    assert td.stats().queued == 501
    ingest.default = Reply()
    td.close(0.1)


def test_requests_with_huge_headers_stay_within_the_queue_byte_budget(
    ingest: IngestServer,
) -> None:
    """Issue #13.7 through a real adapter: each queued request is counted by what it keeps."""
    from flask import Flask

    from td_web.flask import TelemetryDeck as FlaskTelemetryDeck

    ingest.default = Reply(blackhole=True)
    app = Flask(__name__)
    app.config["TELEMETRYDECK_APP_ID"] = APP_ID
    app.config["TELEMETRYDECK_HANDLE_SIGTERM"] = False
    FlaskTelemetryDeck(
        app, endpoint=ingest.url, max_queue_bytes=1_000_000, max_batch_size=5, timeout=30, **FAST
    )
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    headers = {"Referer": "https://example.com/" + "r" * 20_000, "Accept-Language": "en" * 10_000}
    for _ in range(200):
        assert client.get("/?" + "q=1&" * 2_500, headers=headers).status_code == 200
    td = app.extensions["telemetrydeck"].client
    stats = td.stats()
    # A queued request keeps its strings cut to 4,096 characters (the Referer and
    # Accept-Language here, the query string reduced to campaign parameters: none): about
    # 8.4 kB counted per request, so 1 MB holds about 120 of them, not all 200.
    assert 100 <= stats.queued <= 140
    assert stats.dropped["queue_full"] == 200 - stats.queued
    ingest.default = Reply()
    td.close(0.1)


def test_a_record_the_worker_cannot_expand_costs_only_itself(ingest: IngestServer) -> None:
    """The worker takes up to a batch of records out of the queue at once: one whose expansion
    raises what the encoder does not expect (here an on_signal hook nesting a value deeper
    than the interpreter's recursion limit) is dropped alone, not with every record after it."""

    def too_deep(signal: dict[str, Any]) -> None:
        if signal["type"] == "Too.deep":
            nested: dict[str, Any] = {}
            for _ in range(sys.getrecursionlimit() + 100):
                nested = {"n": nested}
            signal["payload"]["deep"] = nested

    # A long interval: nothing goes before the flush, which takes all 21 records at once.
    td = TelemetryDeck(
        app_id=APP_ID, endpoint=ingest.url, on_signal=too_deep, flush_interval=30, max_batch_size=50
    )
    for i in range(10):
        assert td.signal("Expand.test", {"i": i})
    assert td.signal("Too.deep")
    for i in range(10, 20):
        assert td.signal("Expand.test", {"i": i})
    assert td.flush(10)
    td.close(1)
    assert_each_once(ingest, 20)
    assert td.stats().dropped == {"invalid": 1}
