"""Latency and throughput of real servers, bare against with td_web, ingest healthy and down.

    ./dev bench latency [--quick] [--requests 4000] [--connections 8] [--baseline DIR]
                        [--servers uvicorn/starlette,gunicorn/flask,gunicorn/django]
                        [--views hello,page] [--profile DIR]

Real servers on 127.0.0.1, one worker process each (``_served.py``): uvicorn serving
Starlette, gunicorn (gthread worker, 8 threads) serving Flask and Django. Each serves two
views: ``hello`` (a line of HTML) and ``page`` (one SQLite query rendered through the
framework's template engine, a realistic view). Load comes from a second process
(``_load.py``: closed-loop keep-alive connections, bounded in requests and time). Variants,
interleaved within each repetition (a fresh server for each run):

* bare: no td_web;
* td_web, ingest healthy: signals go to a sink that answers at once (``_sink.py``), as a
  remote ingest would, without charging an ingest's CPU to the two cores;
* td_web, ingest black-holed: a server that accepts connections and never answers;
* with ``--baseline DIR``: td_web, ingest healthy, with the td_web found in DIR (a tree
  exported from main), for a same-run A/B of a change;
* with ``--switch-interval S``: bare, and td_web with the ingest healthy, the server's
  interpreter switching threads every S seconds instead of 0.005 (an experiment, see
  BENCHMARKS.md); ratios are still to the plain bare.

Figures are medians over the repetitions: requests per second, p50 and p99 latency, each with
its ratio to bare; the server's CPU per request (master and worker, every thread), and of it
td_web's sender thread's; its resident memory; and td_web's share of the requests it
delivered: what the sink received once the server had shut down gracefully, with td_web's own
counters at the end of the load (sent by then, dropped). The load average is printed with
each table: the machine may be shared.
``--profile DIR`` also samples the server (py-spy, every thread, idle frames left out) during
the first repetition's measured load of each td_web variant, into collapsed-stack files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import _sink
from _served import COUNTERS_PATH
from _variants import APP_ID

HERE = os.path.dirname(os.path.abspath(__file__))
SERVED = ("uvicorn/starlette", "gunicorn/flask", "gunicorn/django")
VIEWS = ("hello", "page")
BARE, HEALTHY, BLACK_HOLED = "bare", "td_web, ingest healthy", "td_web, ingest black-holed"
BASELINE = "td_web@baseline, ingest healthy"
BARE_SWITCH_INTERVAL = "bare, --switch-interval"
SWITCH_INTERVAL = "td_web, ingest healthy, --switch-interval"
#: Issue #14 goal 5: (view, variant) -> the least req/s ratio to bare; p99 at most 1.1x bare.
GOALS = {("hello", HEALTHY): 0.90, ("hello", BLACK_HOLED): 0.95, ("page", HEALTHY): 0.98}
P99_GOAL = 1.10


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    #: CPU the server process (and its workers) used per measured request, sender included.
    server_cpu_us: float
    #: Of that, what td_web's sender thread used.
    sender_cpu_us: float | None
    rss_mib: float
    #: Requests served, warm-up included: what td_web should deliver one signal for each of.
    served: int
    errors: int
    #: Signals the sink received from this server (healthy ingest only).
    delivered: int | None = None
    #: td_web's counters in the server at the end of the load.
    counters: dict[str, object] = field(default_factory=dict)


def server_command(served: str, port: int) -> list[str]:
    server, framework = served.split("/")
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--app-dir", HERE, "--factory"),
            *(f"_served:{framework}_app", "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
        ]
    return [
        *(sys.executable, "-m", "gunicorn", "--chdir", HERE, "-b", f"127.0.0.1:{port}"),
        *("-w", "1", "-k", "gthread", "--threads", "8", "--log-level", "warning"),
        f"_served:{framework}_app()",
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


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


@contextlib.contextmanager
def running(
    served: str,
    view: str,
    endpoint: str | None,
    td_web_path: str | None,
    switch_interval: str | None,
    stopping: list[subprocess.Popen[bytes]],
) -> Iterator[tuple[str, int]]:
    """A server for one run. On leaving, SIGTERM lets td_web deliver within its shutdown
    timeout; a server whose exit need not be waited for is left in ``stopping``."""
    port = _sink.free_port()
    env = dict(os.environ, BENCH_VIEW=view)
    if switch_interval is not None:
        env["BENCH_SWITCH_INTERVAL"] = switch_interval
    if endpoint is not None:
        env.update(
            BENCH_TD_WEB="1",
            TELEMETRYDECK_APP_ID=APP_ID,
            TELEMETRYDECK_SALT="bench-salt",
            TELEMETRYDECK_ENDPOINT=endpoint,
        )
    if td_web_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [td_web_path, env.get("PYTHONPATH")]))
    process = subprocess.Popen(server_command(served, port), env=env, cwd=HERE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{served} did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        stopping.append(process)


def wait_stopped(processes: list[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    while processes:
        process = processes.pop()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load(url: str, connections: int, requests: int, seconds: float) -> dict[str, float]:
    output = subprocess.run(
        [
            *(sys.executable, os.path.join(HERE, "_load.py"), f"{url}/items/42"),
            *("--connections", str(connections), "--requests", str(requests)),
            *("--seconds", str(seconds)),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def td_web_counters(url: str) -> dict[str, object]:
    """td_web's counters in the server at the end of the load (from a health-check path: no
    signal of its own)."""
    from td_web._transport import http_library

    answer: dict[str, object] = http_library().get(f"{url}{COUNTERS_PATH}", timeout=10).json()
    return answer


@contextlib.contextmanager
def profiling(pid: int, output: str | None) -> Iterator[None]:
    """py-spy sampling the server process and its children while the body runs."""
    if output is None:
        yield
        return
    command = [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record"]
    command += ["--pid", str(pid), "--subprocesses", "--threads", "--nonblocking"]
    command += ["--rate", "250", "--format", "raw", "--output", output]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # py-spy attaches before the load starts
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(30)


def one_run(
    served: str, view: str, variant: str, ingests: dict[str, str], args: argparse.Namespace
) -> Run:
    healthy = variant not in (BARE, BARE_SWITCH_INTERVAL, BLACK_HOLED)
    # Each server has a path of its own on the sink, so its signals are counted apart.
    run_path = f"run{args.run_number}"
    args.run_number += 1
    endpoint = {BARE: None, BARE_SWITCH_INTERVAL: None, BLACK_HOLED: ingests["blackhole"]}.get(
        variant, f"{ingests['sink']}/{run_path}"
    )
    profile = None
    if args.profile and endpoint is not None and args.rep == 0:
        name = re.sub(r"[^a-z0-9@_]+", "-", f"{served} {view} {variant}").strip("-")
        profile = os.path.join(args.profile, f"{name}.txt")
    stopping: list[subprocess.Popen[bytes]] = []
    td_web_path = args.baseline if variant == BASELINE else None
    switch_interval = None
    if variant in (BARE_SWITCH_INTERVAL, SWITCH_INTERVAL):
        switch_interval = args.switch_interval
    with running(served, view, endpoint, td_web_path, switch_interval, stopping) as (url, pid):
        warm = load(url, args.connections, args.warmup, 60)
        sender_before = td_web_counters(url).get("sender_cpu_s")
        cpu_before = cpu_seconds(pid)
        with profiling(pid, profile):
            result = load(url, args.connections, args.requests, args.seconds)
        server_cpu = cpu_seconds(pid) - cpu_before
        memory = rss_mib(pid)
        counters = td_web_counters(url)
    sender_cpu = None
    if isinstance(sender_before, float):
        sender_cpu = float(counters["sender_cpu_s"]) - sender_before  # type: ignore[arg-type]
    if healthy:
        wait_stopped(stopping)  # the graceful shutdown delivers what was still queued
        delivered = _sink.events(ingests["sink"]).get(run_path, 0)
    else:
        # Black-holed, the exit waits out td_web's shutdown timeout: let it, during the next run
        # (a sender waiting on a socket costs no CPU).
        args.stopping.extend(stopping)
        delivered = None
    return Run(
        rps=result["rps"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        server_cpu_us=server_cpu / max(result["requests"], 1) * 1e6,
        sender_cpu_us=None if sender_cpu is None else sender_cpu / max(result["requests"], 1) * 1e6,
        rss_mib=memory,
        served=int(warm["requests"] + result["requests"]),
        errors=int(warm["errors"] + result["errors"]),
        delivered=delivered,
        counters=counters,
    )


def delivery(results: list[Run]) -> tuple[str, str]:
    """The least delivered share over the repetitions, and td_web's own counters with it."""
    worst = min(results, key=lambda r: (r.delivered or 0) / max(r.served, 1))
    counters = worst.counters
    dropped = counters.get("dropped") or {}
    assert isinstance(dropped, dict)
    state = (
        f"{counters.get('queued', 0):,} queued, {counters.get('sent', 0):,} sent, "
        f"{sum(dropped.values()):,} dropped"
        + (f" ({', '.join(f'{k} {v:,}' for k, v in dropped.items())})" if dropped else "")
    )
    if worst.delivered is None:
        return "-", state
    share = f"{worst.delivered:,} of {worst.served:,} ({worst.delivered / worst.served:.1%})"
    return share, state


def report(served: str, view: str, runs: dict[str, list[Run]], loads: list[str]) -> None:
    bare = runs[BARE]
    base_rps = statistics.median(r.rps for r in bare)
    base_p50 = statistics.median(r.p50_ms for r in bare)
    base_p99 = statistics.median(r.p99_ms for r in bare)
    base_cpu = statistics.median(r.server_cpu_us for r in bare)
    print(f"\n## {served}, {view} (load average before each repetition: {'; '.join(loads)})\n")
    print(
        "| variant | req/s | ratio | p50 ms | ratio | p99 ms | ratio | server CPU µs/req | "
        "ratio | of which td_web's sender | RSS MiB | delivered (sink) | "
        "td_web at the end of the load | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    verdicts = []
    for variant, results in runs.items():
        rps = statistics.median(r.rps for r in results)
        p50 = statistics.median(r.p50_ms for r in results)
        p99 = statistics.median(r.p99_ms for r in results)
        memory = statistics.median(r.rss_mib for r in results)
        cpu = statistics.median(r.server_cpu_us for r in results)
        senders = [r.sender_cpu_us for r in results if r.sender_cpu_us is not None]
        sender = f"{statistics.median(senders):.0f}" if senders else "-"
        share, state = delivery(results) if variant.startswith("td_web") else ("-", "-")
        print(
            f"| {variant} | {rps:,.0f} | {rps / base_rps:.2f} | {p50:.2f} | {p50 / base_p50:.2f} "
            f"| {p99:.2f} | {p99 / base_p99:.2f} | {cpu:.0f} | {cpu / base_cpu:.2f} | {sender} "
            f"| {memory:.0f} | {share} | {state} | {sum(r.errors for r in results)} |"
        )
        goal = GOALS.get((view, variant))
        if goal is not None:
            met = rps / base_rps >= goal and p99 / base_p99 <= P99_GOAL
            verdicts.append(
                f"{variant}: req/s {rps / base_rps:.2f}x (goal >= {goal:.2f}x), "
                f"p99 {p99 / base_p99:.2f}x (goal <= {P99_GOAL:.2f}x): "
                + ("met" if met else "MISSED")
            )
    print("\n" + "\n".join(f"* {line}" for line in verdicts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, fewer requests")
    parser.add_argument("--servers", default=",".join(SERVED), help="server/framework pairs")
    parser.add_argument("--views", default=",".join(VIEWS))
    parser.add_argument("--requests", type=int, help="measured requests per run (default 4000)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per run")
    parser.add_argument("--baseline", metavar="DIR", help="a tree with the td_web to compare")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the td_web runs into DIR")
    parser.add_argument(
        "--switch-interval",
        metavar="SECONDS",
        help="also run td_web, ingest healthy, with sys.setswitchinterval(SECONDS) in the server",
    )
    args = parser.parse_args(argv)
    args.requests = args.requests or (800 if args.quick else 4000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.warmup = max(args.requests // 5, 200)
    args.run_number = 0
    args.stopping = []
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    variants = [BARE, HEALTHY, *([BASELINE] if args.baseline else [])]
    if args.switch_interval:
        variants += [BARE_SWITCH_INTERVAL, SWITCH_INTERVAL]
    variants.append(BLACK_HOLED)
    print(
        f"# td_web under real servers, {time.strftime('%Y-%m-%d %H:%M')}, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.connections} keep-alive connections from a second process, "
        f"{args.requests:,} requests per run after {args.warmup:,} warm-up, "
        f"{args.reps} interleaved repetitions, medians; load average {load_average()}"
        + (f"; --switch-interval {args.switch_interval}" if args.switch_interval else "")
    )
    started = time.monotonic()
    with _sink.serve("sink") as sink, _sink.serve("blackhole") as blackhole:
        ingests = {"sink": sink, "blackhole": blackhole}
        for served in args.servers.split(","):
            for view in args.views.split(","):
                runs: dict[str, list[Run]] = {variant: [] for variant in variants}
                loads = []
                for rep in range(args.reps):
                    args.rep = rep
                    loads.append(load_average())
                    for variant in variants:
                        runs[variant].append(one_run(served, view, variant, ingests, args))
                report(served, view, runs, loads)
                sys.stdout.flush()
        wait_stopped(args.stopping)
    print(f"\n({time.monotonic() - started:.0f} s; load average {load_average()})")


if __name__ == "__main__":
    main()
