"""One client process of ``sender.py --remote``: a sustained run against a distant ingest, then
the drain at exit, measured from inside and printed as one JSON line for the parent.

    python bench/_remote_run.py URL COUNT_URL sink|collector SIGNALS DRAIN_SIGNALS
    python bench/_remote_run.py --post-cost URL POSTS
    python bench/_remote_run.py --saturated URL SECONDS
    python bench/_remote_run.py --profile URL SIGNALS   (pyinstrument, from the bench extra)
    python bench/_remote_run.py --instructions SIGNALS  (under valgrind: see sender.py)

Run with ``PYTHONPATH`` pointing at the td_web tree being measured (``--baseline``). The
thread CPU clocks are read per thread (``pthread_getcpuclockid``): the caller's, the sender
worker's, and the rest of the process (the poster threads, which make the POSTs).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from _variants import APP_ID

from td_web import TelemetryDeck
from td_web._shutdown import close_all_at_exit
from td_web._signal import CustomSignal
from td_web._transport import http_library

httpx = http_library()


def arrived(count_url: str, kind: str) -> dict[str, int]:
    """Signals the ingest has so far and, from the sink, what it found wrong with them."""
    if kind == "collector":
        stats = httpx.get(f"{count_url}/api/stats", timeout=10).json()
        # The collector validates and stores every signal; it does not look for duplicates.
        return {"signals": int(stats["total_signals"]), "duplicates": -1, "malformed": 0}
    answer: dict[str, int] = httpx.get(f"{count_url}/__checks", timeout=10).json()
    return answer


def thread_cpu(thread: threading.Thread | None) -> float:
    if thread is None or thread.ident is None or not thread.is_alive():
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def client(url: str, **options: Any) -> TelemetryDeck:
    td = TelemetryDeck(app_id=APP_ID, salt="bench", endpoint=url, **options)
    td.signal("Warm.up")
    td.flush(10)
    return td


def sustained(url: str, count_url: str, kind: str, count: int) -> dict[str, float]:
    """The caller sends ``count`` numbered signals as fast as it can, pausing only while the
    queue is 90 % full (so nothing is dropped), until all are delivered."""
    td = client(url)
    worker = td._sender._thread
    cap = td.config.max_queue_size
    before = arrived(count_url, kind)
    process_cpu, caller_cpu = time.process_time(), time.thread_time()
    worker_cpu = thread_cpu(worker)
    started = time.perf_counter()
    first = os.getpid() * 10_000_000  # numbers no other run sends to the same sink
    for i in range(count):
        if i % 500 == 0:
            while td.stats().pending > cap * 0.9:
                time.sleep(0.001)
        td.signal(
            "Bench.signal",
            {"Checkout.cart": "standard", "Cart.items": 3, "Bench.seq": first + i},
            client_user=f"user-{i % 1000}",
        )
    caller_cpu = time.thread_time() - caller_cpu
    delivered_all = td.flush(600)
    elapsed = time.perf_counter() - started
    worker_cpu = thread_cpu(worker) - worker_cpu
    process_cpu = time.process_time() - process_cpu
    after = arrived(count_url, kind)
    stats = td.stats()
    td.close(10)
    delivered = after["signals"] - before["signals"]
    return {
        "signals": count,
        "delivered": delivered,
        "flushed": delivered_all,
        "seconds": elapsed,
        "per_second": delivered / elapsed,
        "duplicates": after["duplicates"] - before["duplicates"],
        "malformed": after["malformed"] - before["malformed"],
        "dropped": sum(stats.dropped.values()),
        "posts": stats.batches - 1,  # the warm-up's
        "caller_us": caller_cpu / count * 1e6,
        "worker_us": worker_cpu / count * 1e6,
        "posters_us": (process_cpu - caller_cpu - worker_cpu) / count * 1e6,
    }


def drain(url: str, count_url: str, kind: str, count: int) -> dict[str, float]:
    """``count`` signals queued at once (the queue made large enough), then what the exit
    does (``close_all_at_exit``, each client within its ``shutdown_timeout``), timed."""
    td = client(url, max_queue_size=max(10_000, count))
    before = arrived(count_url, kind)
    for i in range(count):
        td.signal("Bench.drain", {"Checkout.cart": "standard"}, client_user=f"user-{i % 1000}")
    started = time.perf_counter()
    close_all_at_exit()
    elapsed = time.perf_counter() - started
    after = arrived(count_url, kind)
    return {
        "drain_signals": count,
        "drain_seconds": elapsed,
        "drain_delivered": after["signals"] - before["signals"],
        "drain_dropped": sum(td.stats().dropped.values()),
        "shutdown_timeout": td.config.shutdown_timeout,
    }


def post_cost(url: str, posts: int) -> dict[str, float]:
    """This thread's CPU per POST of one batch of 100 of this run's signals (already
    encoded), each way in turn: td_web's ``Transport.post`` (the library and td_web's
    wrapper), the library's ``Client.post`` alone with the same client, its ``Client.send``
    with a request built from the client's headers (what td_web does since issue #14's third
    round), the client's own transport called directly with such a request (no ``Client``
    layer at all: the most a td_web on httpx could save), td_web's ``Transport.post`` through
    one client whose pool holds 32 open connections (as every poster shared before each had a
    line of its own), and the standard library's ``http.client`` (the floor of one HTTP/1.1
    request from Python)."""
    import concurrent.futures
    import http.client
    from urllib.parse import urlsplit

    from td_web._batches import Batch
    from td_web._transport import Transport

    td = client(url)
    data = td._sender._encoder.entries(
        CustomSignal(
            "Bench.signal", {"Checkout.cart": "standard", "Cart.items": 3}, None, "u", None
        ),
        1,
    )[0]
    body = Batch([data] * 100, [0] * 100).body()
    td.close(10)
    transport = Transport(url, 10, connections=1)
    library_client = transport._client()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    headers = {"Content-Type": "application/json; charset=utf-8"}

    def stdlib() -> None:
        connection.request("POST", parts.path or "/", body=body, headers=headers)
        connection.getresponse().read()

    library = transport.library
    assert library is not None
    request_url = library.URL(url)
    timeouts = {"timeout": library_client.timeout.as_dict()}
    pool = library_client._transport_for_url(request_url)

    def prepared() -> Any:
        return library.Request(
            "POST", request_url, headers=library_client.headers, content=body, extensions=timeouts
        )

    def direct() -> None:
        response = pool.handle_request(prepared())
        response.read()
        response.close()

    shared = Transport(url, 10, connections=32)
    with concurrent.futures.ThreadPoolExecutor(32) as threads:  # 32 connections kept open
        list(threads.map(lambda _: shared.post(body), range(32)))

    ways = {
        "td_web": lambda: transport.post(body),
        "pool of 32": lambda: shared.post(body),
        "library": lambda: library_client.post(url, content=body),
        "send": lambda: library_client.send(prepared()),
        "transport": direct,
        "http.client": stdlib,
    }
    spent = dict.fromkeys(ways, 0.0)
    for _ in range(5):  # interleaved, so that the machine's moods fall on every way
        for name, post in ways.items():
            post()  # a warm connection
            started = time.thread_time()
            for _ in range(posts // 5):
                post()
            spent[name] += time.thread_time() - started
    return {name: seconds / (posts // 5 * 5) * 1e6 for name, seconds in spent.items()} | {
        "body_bytes": len(body)
    }


def saturated(url: str, seconds: float) -> dict[str, float]:
    """The worker's CPU while every batch it may have out is in flight (``max_in_flight=1``:
    at 100 ms, 1,000 signals/s at most) and a caller keeps signalling faster, as a request
    thread does: one signal, then 0.2 ms of I/O. Nothing the worker does can help until an
    answer comes; the queue fills and the rest is refused (``queue_full``)."""
    td = client(url, max_in_flight=1)
    worker = td._sender._thread
    worker_cpu = thread_cpu(worker)
    started = time.perf_counter()
    count = 0
    while time.perf_counter() - started < seconds:
        td.signal("Bench.signal", {"Checkout.cart": "standard"}, client_user="user-1")
        count += 1
        time.sleep(0.0002)
    worker_cpu = thread_cpu(worker) - worker_cpu
    elapsed = time.perf_counter() - started
    td.close(0.1)
    return {"worker_share": worker_cpu / elapsed, "signals_per_second": count / elapsed}


def profile(url: str, count: int) -> None:
    """A sustained run with pyinstrument inside the caller's thread, the worker and the first
    poster thread (each profiler sees only its own thread); prints the three trees."""
    from pyinstrument import Profiler

    from td_web import _posters, _sender

    profiles: dict[str, Profiler] = {}

    def profiled(name: str, run: Any) -> Any:
        def wrapper(self: Any, *args: Any) -> None:
            if name in profiles:  # one poster of many is profiled
                return run(self, *args)
            profiler = profiles[name] = Profiler(interval=0.0005)
            profiler.start()
            try:
                run(self, *args)
            finally:
                profiler.stop()

        return wrapper

    _sender.Sender._run = profiled("worker", _sender.Sender._run)  # type: ignore[method-assign]
    _posters.Posters._run = profiled("poster", _posters.Posters._run)  # type: ignore[method-assign]
    caller = profiles["caller"] = Profiler(interval=0.0005)
    caller.start()
    result = sustained(url, url, "sink", count)
    caller.stop()
    print(json.dumps(result))
    for name, profiler in profiles.items():
        print(f"--- {name} thread")
        print(profiler.output_text(unicode=False, color=False, show_all=False))


def instructions(count: int) -> None:
    """Run under ``valgrind --dump-before=getppid``: the benchmark's ``signal()`` calls, then
    the worker's expansion of what they queued (dequeue, build and encode, the outbox, each
    batch's body), each part between two marks; no thread, no network (deterministic)."""
    td = TelemetryDeck(
        app_id=APP_ID, salt="bench", endpoint="http://127.0.0.1:9", max_queue_size=10**7
    )
    sender = td._sender
    sender._thread = threading.current_thread()  # the worker's part is run here, in turn

    def call(first: int, calls: int) -> None:
        for i in range(calls):
            td.signal(
                "Bench.signal",
                {"Checkout.cart": "standard", "Cart.items": 3, "Bench.seq": first + i},
                client_user=f"user-{i % 1000}",
            )

    def expand() -> None:
        while sender._queue:
            records, first, held = sender._dequeue(td.config.max_batch_size)
            sender._expand(records, first, held)
            sender._take_batch().body()

    call(0, 1000)  # warm: the users' hashes, the caches
    expand()
    os.getppid()  # mark: before this, start-up and warm-up
    call(10**9, count)
    os.getppid()  # mark: the callers' part
    expand()
    os.getppid()  # mark: the worker's part
    sender._thread = None


def main() -> None:
    if sys.argv[1] == "--instructions":
        instructions(int(sys.argv[2]))
        return
    if sys.argv[1] == "--profile":
        profile(sys.argv[2], int(sys.argv[3]))
        return
    if sys.argv[1] == "--saturated":
        print(json.dumps(saturated(sys.argv[2], float(sys.argv[3]))))
        return
    if sys.argv[1] == "--post-cost":
        print(json.dumps(post_cost(sys.argv[2], int(sys.argv[3]))))
        return
    url, count_url, kind, signals, drain_signals = sys.argv[1:6]
    result = sustained(url, count_url, kind, int(signals))
    if int(drain_signals):
        result.update(drain(url, count_url, kind, int(drain_signals)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
