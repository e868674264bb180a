"""Latency and throughput of real servers, bare against with td_web, ingest healthy and down.

    ./dev bench latency [--quick] [--requests 4000] [--connections 8]

Two real servers on 127.0.0.1, one worker process each: uvicorn serving a Starlette hello-world
app, and gunicorn (gthread worker) serving a Flask one (``_served.py``). Load comes from a
second process (``_load.py``: closed-loop keep-alive connections, bounded in requests and
time). Variants, interleaved over the repetitions (a fresh server for each run):

* bare: no td_web;
* td_web, ingest healthy: signals go to the project's own collector (``td-web collect``);
* td_web, ingest black-holed: a server that accepts connections and never answers.

Figures are medians over the repetitions: requests per second, p50 and p99 latency, each as a
ratio to bare; the server's resident memory after the run (the queue caps what an outage can
hold); and, healthy, how many signals the collector had received shortly after the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import _sink
from sender import collector, collector_count

HERE = os.path.dirname(os.path.abspath(__file__))
APP_ID = "B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE"
SERVERS = ("uvicorn", "gunicorn")
VARIANTS = ("bare", "td_web, ingest healthy", "td_web, ingest black-holed")


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    #: CPU the server process (and its workers) used per measured request, sender included.
    server_cpu_us: float
    rss_mib: float
    delivered: int | None
    errors: int


def server_command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--app-dir", HERE, "--factory"),
            *("_served:starlette_app", "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
        ]
    return [
        *(sys.executable, "-m", "gunicorn", "--chdir", HERE, "-b", f"127.0.0.1:{port}"),
        *("-w", "1", "-k", "gthread", "--threads", "8", "--log-level", "warning"),
        "_served:flask_app()",
    ]


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (gunicorn's master and worker)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{current}/task/{current}/children") as children,
        ):
            pending.extend(int(child) for child in children.read().split())
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants, in MiB."""
    total = 0
    for current in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{current}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its descendants so far (all their threads)."""
    ticks = 0
    for current in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{current}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(server: str, endpoint: str | None) -> Iterator[tuple[str, int]]:
    port = _sink.free_port()
    env = dict(os.environ)
    if endpoint is not None:
        env.update(
            BENCH_TD_WEB="1",
            TELEMETRYDECK_APP_ID=APP_ID,
            TELEMETRYDECK_SALT="bench-salt",
            TELEMETRYDECK_ENDPOINT=endpoint,
        )
    process = subprocess.Popen(server_command(server, port), env=env, cwd=HERE)
    url = f"http://127.0.0.1:{port}/items/42"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.05)
        yield url, process.pid
    finally:
        # SIGTERM lets td_web deliver (or, black-holed, give up) within its shutdown timeout.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load(url: str, connections: int, requests: int, seconds: float) -> dict[str, float]:
    output = subprocess.run(
        [
            *(sys.executable, os.path.join(HERE, "_load.py"), url),
            *("--connections", str(connections), "--requests", str(requests)),
            *("--seconds", str(seconds)),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def wait_for_delivery(count_url: str, before: int, expected: int, timeout: float = 15) -> int:
    """Signals the collector received since ``before``, once it has them all or stops growing."""
    deadline = time.monotonic() + timeout
    last, steady_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        got = collector_count(count_url) - before
        if got >= expected:
            return got
        if got != last:
            last, steady_since = got, time.monotonic()
        elif time.monotonic() - steady_since > 6:  # past one flush interval with nothing new
            return got
        time.sleep(0.5)
    return max(last, 0)


def one_run(
    server: str,
    variant: str,
    collector_url: str,
    blackhole_url: str,
    args: argparse.Namespace,
) -> Run:
    endpoint = {"bare": None, VARIANTS[1]: collector_url, VARIANTS[2]: blackhole_url}[variant]
    before = collector_count(collector_url)
    with running(server, endpoint) as (url, pid):
        load(url, args.connections, args.warmup, 60)
        cpu_before = cpu_seconds(pid)
        result = load(url, args.connections, args.requests, args.seconds)
        server_cpu = cpu_seconds(pid) - cpu_before
        memory = rss_mib(pid)
        delivered = None
        if variant == VARIANTS[1]:
            expected = args.warmup + int(result["requests"])
            delivered = wait_for_delivery(collector_url, before, expected)
    return Run(
        rps=result["rps"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        server_cpu_us=server_cpu / max(result["requests"], 1) * 1e6,
        rss_mib=memory,
        delivered=delivered,
        errors=int(result["errors"]),
    )


def report(server: str, runs: dict[str, list[Run]], requests: int, warmup: int) -> None:
    bare = runs["bare"]
    base_rps = statistics.median(r.rps for r in bare)
    base_p50 = statistics.median(r.p50_ms for r in bare)
    base_p99 = statistics.median(r.p99_ms for r in bare)
    print(f"\n## {server}\n")
    base_cpu = statistics.median(r.server_cpu_us for r in bare)
    print(
        "| variant | req/s | ratio | p50 ms | ratio | p99 ms | ratio | server CPU µs/req | "
        "ratio | RSS MiB | signals delivered | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant, results in runs.items():
        rps = statistics.median(r.rps for r in results)
        p50 = statistics.median(r.p50_ms for r in results)
        p99 = statistics.median(r.p99_ms for r in results)
        memory = statistics.median(r.rss_mib for r in results)
        cpu = statistics.median(r.server_cpu_us for r in results)
        delivered = [r.delivered for r in results if r.delivered is not None]
        shown = f"{min(delivered):,} of {warmup + requests:,}" if delivered else "-"
        print(
            f"| {variant} | {rps:,.0f} | {rps / base_rps:.2f} | {p50:.2f} | {p50 / base_p50:.2f} "
            f"| {p99:.2f} | {p99 / base_p99:.2f} | {cpu:.0f} | {cpu / base_cpu:.2f} "
            f"| {memory:.0f} | {shown} | "
            f"{sum(r.errors for r in results)} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, fewer requests")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--requests", type=int, help="measured requests per run (default 4000)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per run")
    args = parser.parse_args(argv)
    args.requests = args.requests or (1500 if args.quick else 4000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.warmup = max(args.requests // 5, 200)
    print(
        f"# td_web under real servers, {time.strftime('%Y-%m-%d')}, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.connections} keep-alive connections from a second process, "
        f"{args.requests:,} requests per run after {args.warmup:,} warm-up, "
        f"{args.reps} interleaved repetitions, medians"
    )
    started = time.monotonic()
    with collector() as collector_url, _sink.serve("blackhole") as blackhole_url:
        for server in args.servers.split(","):
            runs: dict[str, list[Run]] = {variant: [] for variant in VARIANTS}
            for _ in range(args.reps):
                for variant in VARIANTS:
                    runs[variant].append(
                        one_run(server, variant, collector_url, blackhole_url, args)
                    )
            report(server, runs, args.requests, args.warmup)
            sys.stdout.flush()
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
