"""Sender throughput and the caller's cost, with the ingest healthy, slowed and down.

    ./dev bench sender [--quick] [--signals 100000]

One client process sends to the project's own collector (``td-web collect``, a separate
process, so it never shares this process's interpreter lock). For each ingest state it prints:

* the caller's cost per ``td.signal()`` call in a burst (µs) and its ratio to the healthy run,
* sustained signals per second until the collector had them all (healthy, slowed), the caller
  pausing whenever the queue is nearly full so that nothing is dropped,
* the sender thread's CPU share meanwhile (process CPU minus the caller's own thread CPU),
* the batch size achieved,
* memory held by the client (tracemalloc) after the burst, against the queue's cap.

A slowed ingest answers every batch after a delay (``--ingest-delay-ms``, a realistic round
trip to a hosted ingest is ~100 ms), through a small delaying proxy in front of the collector;
a down ingest refuses connections. With the slowed ingest it also measures the drain at exit:
``--drain-signals`` queued at once, then ``close()``, timed, and how many arrived.

``--remote`` measures one process against a distant ingest instead (issue #14 goal 4): the
sink of ``_sink.py`` answering each upload after ``--ingest-delay-ms`` (an asyncio server in a
process of its own, which checks every signal and costs the measured cores little), or with
``--ingest collector`` the collector behind the delaying proxy (every signal validated and
stored by the real collector, which then takes most of a core itself). Each run is a fresh
process (``_remote_run.py``), ``--reps`` times, interleaved with a ``--baseline DIR`` tree
(``git archive main td_web | tar -x -C DIR``) when given; it prints the medians: signals/s
delivered, lost and duplicated, the caller's CPU per ``signal()`` call, the sender worker's and
the poster threads' CPU per signal, and the drain at exit.

Then the HTTP libraries side by side (issue #19), in the same run against the same healthy
collector: for each one installed (httpx2, httpx; ``--libraries``), ``--reps`` interleaved
sustained runs, with the sender thread's CPU per POST and per signal.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import _sink
from _variants import APP_ID

from td_web import TelemetryDeck
from td_web._config import HTTP_CLIENTS
from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

PAYLOAD = {"Checkout.cart": "standard", "Cart.items": 3, "Cart.currency": "EUR"}


@dataclass
class Result:
    state: str
    per_call_us: float
    throughput: float | None
    sender_cpu_share: float | None
    batch_size: float | None
    delivered: int
    dropped: int
    memory_kib: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def answering(command: list[str], url: str, health: str) -> Iterator[str]:
    """``url`` once the process started with ``command`` answers ``GET {url}{health}``;
    the process is stopped on the way out."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}{health}", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def collector() -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        database = os.path.join(folder, "bench.db")
        command = [sys.executable, "-m", "td_web.cli", "collect", "--port", str(port)]
        with answering(
            [*command, "--db", database, "--quiet"], f"http://127.0.0.1:{port}", "/api/stats"
        ) as url:
            yield url


def collector_count(url: str) -> int:
    stats: dict[str, Any] = httpx.get(f"{url}/api/stats", timeout=10).json()
    return int(stats["total_signals"])


@contextlib.contextmanager
def slow_proxy(target: str, delay: float) -> Iterator[str]:
    """Forwards each POST to ``target`` after ``delay`` seconds, from a process of its own
    (in this one it would share the measured client's interpreter lock)."""
    port = free_port()
    command = [sys.executable, __file__, "--serve-proxy", target, str(delay), str(port)]
    with answering(command, f"http://127.0.0.1:{port}", "/health") as url:
        yield url


def serve_proxy(target: str, delay: float, port: int) -> None:
    forward = httpx.Client(base_url=target, timeout=30, limits=httpx.Limits(max_connections=200))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            answer = forward.post(
                self.path, content=body, headers={"Content-Type": self.headers["Content-Type"]}
            )
            self.send_response(answer.status_code)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def make_client(endpoint: str, library: str | None = None, **options: Any) -> TelemetryDeck:
    td = TelemetryDeck(
        app_id=APP_ID,
        salt="bench",
        endpoint=endpoint,
        flush_interval=1.0,
        initial_backoff=0.2,
        max_backoff=1.0,
        http_client=library,
        **options,
    )
    td.signal("Warm.up")
    td.flush(10)
    return td


def caller_cost(td: TelemetryDeck, count: int) -> float:
    """µs per signal() call in a burst (the queue may overflow: that is part of the cost)."""
    started = time.perf_counter()
    for i in range(count):
        td.signal("Bench.signal", PAYLOAD, client_user=f"user-{i % 1000}")
    return (time.perf_counter() - started) / count * 1e6


def held_memory(td: TelemetryDeck, count: int) -> float:
    """KiB the client holds after another burst (traced allocations still alive)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            td.signal("Bench.signal", PAYLOAD, client_user=f"user-{i % 1000}")
        return (tracemalloc.get_traced_memory()[0] - before) / 1024
    finally:
        tracemalloc.stop()


@dataclass
class Sustained:
    throughput: float
    sender_cpu_share: float
    delivered: int
    sender_cpu_s: float
    posts: int


def sustained(td: TelemetryDeck, count: int, count_url: str) -> Sustained:
    """Signals/s delivered and the sender's CPU, with the caller waiting whenever the queue is
    nearly full, so nothing is dropped and the sender's pace is what is measured."""
    before = collector_count(count_url)
    posts_before = td.stats().batches
    cap = td.config.max_queue_size
    process_cpu = time.process_time()
    thread_cpu = time.thread_time()
    started = time.perf_counter()
    for i in range(count):
        if i % 500 == 0:
            while td.stats().pending > cap * 0.9:
                time.sleep(0.001)
        td.signal("Bench.signal", PAYLOAD, client_user=f"user-{i % 1000}")
    td.flush(600)
    elapsed = time.perf_counter() - started
    caller_cpu = time.thread_time() - thread_cpu
    sender_cpu = (time.process_time() - process_cpu) - caller_cpu
    delivered = collector_count(count_url) - before
    posts = td.stats().batches - posts_before
    return Sustained(delivered / elapsed, sender_cpu / elapsed, delivered, sender_cpu, posts)


def run(state: str, endpoint: str, count: int, count_url: str | None) -> Result:
    td = make_client(endpoint)
    throughput = share = None
    delivered = 0
    if count_url:
        measured = sustained(td, count, count_url)
        throughput, share = measured.throughput, measured.sender_cpu_share
        delivered = measured.delivered
    per_call = caller_cost(td, count)
    td.flush(0 if count_url is None else 600)
    memory = held_memory(td, count)
    stats = td.stats()
    td.close(0.5)
    return Result(
        state=state,
        per_call_us=per_call,
        throughput=throughput,
        sender_cpu_share=share,
        batch_size=(stats.sent - 1) / max(stats.batches - 1, 1) if stats.batches > 1 else None,
        delivered=delivered,
        dropped=stats.dropped.get("queue_full", 0),
        memory_kib=memory,
    )


def drain_at_exit(endpoint: str, count: int, count_url: str) -> tuple[float, int, bool, int]:
    """(seconds close() took, signals delivered, close()'s verdict, signals dropped) for
    ``count`` queued (the queue made large enough to hold them), closed with the default
    ``shutdown_timeout`` as at exit."""
    td = make_client(endpoint, max_queue_size=max(10_000, count))
    before = collector_count(count_url)
    for i in range(count):
        td.signal("Bench.drain", PAYLOAD, client_user=f"user-{i % 1000}")
    started = time.perf_counter()
    complete = td.close(td.config.shutdown_timeout)
    elapsed = time.perf_counter() - started
    dropped = sum(td.stats().dropped.values())
    return elapsed, collector_count(count_url) - before, complete, dropped


def profile_sender(url: str, delay: float, count: int) -> None:
    """Where the sender thread's time goes in a sustained run against the slowed ingest
    (pyinstrument, from the ``bench`` extra, started inside the sender's own thread)."""
    from pyinstrument import Profiler

    from td_web import _sender

    profiles: list[Profiler] = []
    run = _sender.Sender._run

    def profiled(sender: _sender.Sender) -> None:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        try:
            run(sender)
        finally:
            profiler.stop()
            profiles.append(profiler)

    _sender.Sender._run = profiled  # type: ignore[method-assign]
    try:
        with slow_proxy(url, delay) as slow:
            td = make_client(slow)
            m = sustained(td, count, url)
            td.close(10)
    finally:
        _sender.Sender._run = run  # type: ignore[method-assign]
    print(
        f"sender thread at {delay * 1000:.0f} ms per batch: {m.delivered:,} delivered at "
        f"{m.throughput:,.0f}/s, sender CPU {m.sender_cpu_s / max(m.delivered, 1) * 1e6:.1f} "
        f"µs per signal, {m.posts} POSTs"
    )
    for profiler in profiles:
        print(profiler.output_text(unicode=False, color=False))


def compare_libraries(url: str, libraries: list[str], count: int, reps: int) -> None:
    """Each library's sustained delivery to the same collector, runs interleaved (A B A B)."""
    runs: dict[str, list[Sustained]] = {name: [] for name in libraries}
    for _ in range(reps):
        for name in libraries:
            td = make_client(url, name)
            runs[name].append(sustained(td, count, url))
            td.close(10)
    print(f"\nHTTP libraries, {count:,} signals per run, {reps} interleaved runs each (median)")
    print(
        f"{'library':<10}{'version':>9}{'signals/s':>11}{'sender CPU':>12}{'CPU/POST':>10}"
        f"{'CPU/signal':>12}{'POSTs':>7}"
    )
    for name, measured in runs.items():
        middle = sorted(measured, key=lambda m: m.sender_cpu_s / max(m.delivered, 1))
        m = middle[len(middle) // 2]
        version = importlib.import_module(name).__version__
        print(
            f"{name:<10}{version:>9}{m.throughput:>11,.0f}{m.sender_cpu_share:>12.0%}"
            f"{m.sender_cpu_s / max(m.posts, 1) * 1e6:>8,.0f}µs"
            f"{m.sender_cpu_s / max(m.delivered, 1) * 1e6:>10.1f}µs{m.posts:>7,}"
        )
    print("CPU: the sender thread's (process CPU minus the caller's), per POST and per signal")


def remote(args: argparse.Namespace) -> None:
    """Goal 4: this tree (and ``--baseline``) against a distant ingest, runs interleaved."""
    trees = {"this tree": None, **({"baseline": args.baseline} if args.baseline else {})}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    delay = args.slow_ms / 1000
    started_load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        if args.ingest == "collector":
            count_url = stack.enter_context(collector())
            url = stack.enter_context(slow_proxy(count_url, delay))
        else:
            url = count_url = stack.enter_context(_sink.serve("sink", args.slow_ms))
        for _ in range(args.reps):
            for name, tree in trees.items():
                runs[name].append(remote_run(tree, url, count_url, args))
        posts = helper(None, "--post-cost", url, str(args.posts)) if args.posts else None
        busy = {
            name: [helper(tree, "--saturated", url, str(args.saturated)) for _ in range(args.reps)]
            for name, tree in trees.items()
            if args.saturated
        }
    load = os.getloadavg()[0]
    print(
        f"td_web against an ingest {args.slow_ms} ms away ({args.ingest}), {args.signals:,} "
        f"signals per run, median of {args.reps} interleaved runs; Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{started_load:.1f} at the start, {load:.1f} at the end"
    )
    print(
        f"{'tree':<11}{'signals/s':>10}{'lost':>6}{'twice':>6}{'POSTs':>7}{'caller':>9}"
        f"{'worker':>9}{'posters':>9}{'process':>9}{'drain':>8}{'drained':>15}"
    )
    for name, measured in runs.items():
        m = {key: statistics.median(run[key] for run in measured) for key in measured[0]}
        lost = max(run["signals"] - run["delivered"] for run in measured)
        twice = max(run["duplicates"] for run in measured)  # -1: the collector does not tell
        process = m["caller_us"] + m["worker_us"] + m["posters_us"]
        drained = "-"
        if "drain_signals" in m:
            drained = f"{m['drain_delivered']:,.0f}/{m['drain_signals']:,.0f}"
        print(
            f"{name:<11}{m['per_second']:>10,.0f}{lost:>6,.0f}"
            f"{(f'{twice:,.0f}' if twice >= 0 else '-'):>6}{m['posts']:>7,.0f}"
            f"{m['caller_us']:>7.1f}µs{m['worker_us']:>7.1f}µs{m['posters_us']:>7.1f}µs"
            f"{process:>7.1f}µs{m.get('drain_seconds', 0):>7.2f}s{drained:>15}"
        )
    print(
        "lost, twice: the worst run's signals not delivered / delivered more than once; CPU "
        "per signal: the caller's thread (per signal() call), the sender worker, the poster "
        "threads (the POSTs), the process; drain: close at exit with the default "
        f"shutdown_timeout, {args.drain_signals:,} queued"
    )
    for name, measured in busy.items():
        share = statistics.median(run["worker_share"] for run in measured)
        rate = statistics.median(run["signals_per_second"] for run in measured)
        print(
            f"{name}: every batch in flight (max_in_flight=1), a caller signalling "
            f"{rate:,.0f}/s with I/O between signals: the worker used {share:.1%} of a core"
        )
    if posts:
        print(
            f"one POST of 100 signals ({posts.pop('body_bytes'):,.0f} bytes) to the same ingest, "
            f"this thread's CPU, {args.posts} each, interleaved: "
            + ", ".join(f"{name} {us:,.0f} µs" for name, us in posts.items())
        )
        print(
            "td_web: Transport.post (the library and td_web's wrapper); library: its "
            "Client.post alone; send: its Client.send with a request built from the client's "
            "headers; transport: the client's transport called directly with that request; "
            "pool of 32: td_web's Transport.post through one client holding 32 connections; "
            "http.client: the standard library's, the floor in Python"
        )


def helper(tree: str | None, *arguments: str) -> dict[str, float]:
    """One run of ``_remote_run.py`` with the td_web of ``tree`` (None: this one)."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_remote_run.py")
    output = subprocess.run(
        [sys.executable, script, *arguments], env=env, check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(output.splitlines()[-1])
    return result


def instruction_counts(tree: str | None, count: int) -> tuple[float, float]:
    """Instructions per signal of the caller's ``signal()`` and of the worker's expansion
    (valgrind callgrind: deterministic, unlike CPU time on a shared machine)."""
    out = tempfile.mkdtemp(prefix="td_web-callgrind-")
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_remote_run.py")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=getppid",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            script,
            "--instructions",
            str(count),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    parts = []
    for part in (2, 3):  # part 2: the calls, part 3: the worker's expansion
        with open(f"{out}/callgrind.out.{part}") as profile:
            totals = re.search(r"^(?:summary|totals): (\d+)", profile.read(), re.MULTILINE)
        assert totals is not None
        parts.append(int(totals.group(1)) / count)
    shutil.rmtree(out, ignore_errors=True)
    return parts[0], parts[1]


def instructions(args: argparse.Namespace) -> None:
    """The caller's and the worker's instructions per custom signal, this tree and
    ``--baseline``."""
    trees = {"this tree": None, **({"baseline": args.baseline} if args.baseline else {})}
    count = min(args.signals, 5_000)
    print(
        f"instructions per custom signal (valgrind), {count:,} of the benchmark's signal() "
        "calls, then the worker's expansion of them (dequeue, build and encode, batch body)"
    )
    for name, tree in trees.items():
        caller, worker = instruction_counts(tree, count)
        print(f"{name:<11} caller {caller:>9,.0f}   worker {worker:>9,.0f}")


def remote_run(
    tree: str | None, url: str, count_url: str, args: argparse.Namespace
) -> dict[str, float]:
    return helper(tree, url, count_url, args.ingest, str(args.signals), str(args.drain_signals))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--ingest-delay-ms", "--slow-ms", dest="slow_ms", type=int, default=200)
    parser.add_argument("--drain-signals", type=int, default=5_000)
    parser.add_argument("--quick", action="store_true", help="20,000 signals per run")
    parser.add_argument(
        "--libraries",
        default=",".join(name for name in HTTP_CLIENTS if importlib.util.find_spec(name)),
        help="HTTP libraries to compare (default: those installed); empty: skip the comparison",
    )
    parser.add_argument("--reps", type=int, default=3, help="runs per library (3)")
    parser.add_argument("--only-libraries", action="store_true", help="skip the ingest states")
    parser.add_argument(
        "--profile-sender",
        action="store_true",
        help="only profile the sender thread against the slowed ingest (pyinstrument)",
    )
    parser.add_argument(
        "--remote",
        action="store_true",
        help="only the distant ingest (issue #14 goal 4): throughput, CPU, the drain at exit",
    )
    parser.add_argument(
        "--ingest",
        choices=("sink", "collector"),
        default="sink",
        help="with --remote: the checking sink (default) or the collector behind a proxy",
    )
    parser.add_argument("--baseline", metavar="DIR", help="with --remote: a td_web tree to compare")
    parser.add_argument(
        "--saturated",
        type=float,
        default=5,
        help="with --remote: seconds of a caller signalling while every batch is in flight",
    )
    parser.add_argument(
        "--posts",
        type=int,
        default=50,
        help="with --remote: POSTs of 100 signals timed each way (td_web, library, http.client)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="with --remote: only the caller's and worker's instructions per signal (valgrind)",
    )
    parser.add_argument(
        "--serve-proxy", nargs=3, metavar=("TARGET", "DELAY", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve_proxy:
        target, delay, port = args.serve_proxy
        serve_proxy(target, float(delay), int(port))
        return
    if args.quick:
        args.signals = min(args.signals, 20_000)
    libraries = [name for name in args.libraries.split(",") if name]
    if args.remote and args.instructions:
        instructions(args)
        return
    if args.remote:
        remote(args)
        return
    if args.profile_sender:
        with collector() as url:
            profile_sender(url, args.slow_ms / 1000, args.signals)
        return
    if args.only_libraries:
        with collector() as url:
            compare_libraries(url, libraries, args.signals, args.reps)
        return
    results = []
    with collector() as url:
        if libraries:
            compare_libraries(url, libraries, args.signals, args.reps)
        results.append(run("healthy", url, args.signals, url))
        with slow_proxy(url, args.slow_ms / 1000) as slow:
            results.append(run(f"slowed ({args.slow_ms} ms/batch)", slow, args.signals, url))
            drain = drain_at_exit(slow, args.drain_signals, url)
    results.append(run("down (refused)", f"http://127.0.0.1:{free_port()}", args.signals, None))
    healthy = results[0]
    print(
        f"td_web sender, {args.signals:,} signals per run, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'ingest':<26}{'µs/call':>9}{'vs healthy':>11}{'signals/s':>11}{'sender CPU':>12}"
        f"{'batch':>7}{'dropped':>9}{'memory KiB':>12}"
    )
    for r in results:
        print(
            f"{r.state:<26}{r.per_call_us:>9.2f}{r.per_call_us / healthy.per_call_us:>11.2f}"
            f"{(f'{r.throughput:,.0f}' if r.throughput else '-'):>11}"
            f"{(f'{r.sender_cpu_share:.0%}' if r.sender_cpu_share is not None else '-'):>12}"
            f"{(f'{r.batch_size:.0f}' if r.batch_size else '-'):>7}{r.dropped:>9,}"
            f"{r.memory_kib:>12,.0f}"
        )
    print(
        "signals/s, sender CPU: sustained delivery, the caller pausing when the queue is 90% "
        "full (nothing dropped)"
    )
    print("µs/call: a burst with no pausing; dropped: burst signals refused by the full queue")
    seconds, delivered, complete, dropped = drain
    print(
        f"drain at exit, ingest slowed to {args.slow_ms} ms/batch: {args.drain_signals:,} "
        f"queued, close(shutdown_timeout) took {seconds:.1f} s, {delivered:,} delivered, "
        f"{dropped:,} dropped{'' if complete else ' (close() reported signals left behind)'}"
    )
    slowed = results[1]
    print(
        f"slowed sustained run: {slowed.delivered:,} of {args.signals:,} delivered "
        f"({args.signals - slowed.delivered:,} lost)"
    )
    print(
        "memory: what the client still holds after another burst; the queue caps it at "
        "10,000 signals whatever the ingest does"
    )


if __name__ == "__main__":
    main()
