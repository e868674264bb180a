"""Per-request overhead of td_web against its peers, in-process, for every supported framework.

    ./dev bench overhead [--quick] [--frameworks flask,starlette] [--variants bare,td_web]

For each framework (Starlette, FastAPI, Flask, Django under WSGI and under ASGI) a hello-world
app with one parametrised route is called in-process (ASGI: a synthetic scope; WSGI: a prebuilt
environ; see ``_drive.py``) in these variants: bare; td_web (the automatic signal and its
session cookie); td_web plus one custom signal per request; td_web with a new visitor on every
request (no cookie: a session starts each time); td_web with the visitor's session
sampled out (``sample_rate`` below the session's share: decided, cookie kept, nothing queued);
a naive ``posthog.capture()``
middleware; sentry-sdk with tracing off; OpenTelemetry instrumentation with a batch span
processor and the OTLP/HTTP exporter; apitally. Every SDK sends to a local sink (a separate
process), and an audit hook refuses any connection that is not to the loopback address.

Each (framework, variant) app lives in its own process (the SDKs patch frameworks and install
global providers), and the processes take turns: warm-up, then repetitions run A B C A B C,
one batch of requests per variant and repetition. Figures are medians over the repetitions:
wall-clock µs per request (background threads in the same process included, as on a busy
server), the µs added over bare (median of the paired differences within a repetition), the
ratio to bare, and the CPU µs of the requesting thread alone.

After the repetitions every worker flushes its SDK (as at a graceful exit) and the report gives
each variant's delivered share: td_web exactly (the records its requests offered, those its
sender dropped by reason or still held, against the signals the sink counted), posthog and
OpenTelemetry from the events they made against the events the sink counted. Each worker
uploads under a sink path of its own, so the sink tells them apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any

import _sink
from _apps import FRAMEWORKS
from _variants import PEERS, VARIANTS

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Worker:
    framework: str
    variant: str
    process: subprocess.Popen[str]
    log: IO[str]
    skip: str | None = None
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    #: What the worker served and its SDK made, after a flush (``drain``).
    drained: dict[str, Any] = field(default_factory=dict)
    #: The first path segment of this worker's uploads to the sink (one per worker).
    segment: str = ""

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read()[-2000:]
            raise RuntimeError(f"{self.framework}/{self.variant} worker died:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def label(key: str) -> str:
    """A variant's label; ``name@baseline`` is that variant with the baseline's td_web."""
    name, _, tag = key.partition("@")
    return VARIANTS[name].label + (f" [{tag}]" if tag else "")


def start(framework: str, variant: str, sink: str, baseline: str | None, segment: str) -> Worker:
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by Worker.stop()
    name, _, tag = variant.partition("@")
    env = dict(os.environ)
    if tag:  # an earlier td_web, importable from that directory, shadows the working tree's
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        # A path of its own under the sink, so that the sink's counts tell the workers apart.
        [sys.executable, os.path.join(HERE, "_worker.py"), framework, name, f"{sink}/{segment}"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=HERE,
    )
    return Worker(framework, variant, process, log, segment=segment)


@dataclass
class Row:
    variant: str
    wall_us: float
    added_us: float
    ratio: float
    cpu_us: float
    cpu_added_us: float


def batch_size(warm_us: list[float], budget: float) -> int:
    """Requests per batch so that one repetition (every variant once) takes about ``budget``
    seconds: frameworks differ tenfold in speed, and the default run must stay short."""
    size = int(budget / (sum(warm_us) / 1e6))
    return max(200, min(size, 5000))


def measure(
    framework: str, variants: list[str], sink: str, args: argparse.Namespace
) -> tuple[list[Row], list[Worker], int]:
    workers = [
        start(framework, v, sink, args.baseline, f"{framework}-{index}")
        for index, v in enumerate(variants)
    ]
    try:
        for worker in workers:
            answer = worker.read()
            worker.skip = answer.get("skip")
        live = [w for w in workers if w.skip is None]
        if not live or live[0].variant != "bare":
            raise RuntimeError(f"{framework}: the bare app could not run: {workers[0].skip}")
        warm_us = []
        for worker in live:
            answer = worker.ask(f"run {args.warmup}")
            warm_us.append(answer["wall"] / args.warmup * 1e6)
        requests = args.requests or batch_size(warm_us, args.budget)
        for _ in range(args.reps):
            for worker in live:  # interleaved: A B C A B C
                answer = worker.ask(f"run {requests}")
                worker.walls.append(answer["wall"] / requests * 1e6)
                worker.cpus.append(answer["cpu"] / requests * 1e6)
        for worker in live:
            worker.info = worker.ask("info")
            worker.drained = worker.ask("drain")
    finally:
        for worker in workers:
            worker.stop()
    bare = live[0]
    rows = []
    for worker in live:
        rows.append(
            Row(
                variant=worker.variant,
                wall_us=statistics.median(worker.walls),
                added_us=statistics.median(
                    w - b for w, b in zip(worker.walls, bare.walls, strict=True)
                ),
                ratio=statistics.median(worker.walls) / statistics.median(bare.walls),
                cpu_us=statistics.median(worker.cpus),
                cpu_added_us=statistics.median(
                    c - b for c, b in zip(worker.cpus, bare.cpus, strict=True)
                ),
            )
        )
    return rows, workers, requests


@dataclass
class Delivery:
    """One variant's delivered share: what its SDK made against what the sink received."""

    variant: str
    made: int | None
    received: int | None
    share: float | None
    detail: str


def deliveries(workers: list[Worker], events: dict[str, int]) -> dict[str, Delivery]:
    """td_web exactly: the records its sender accepted and dropped (by reason), the signals it
    reports sent, and the signals the sink received; the peers where they can tell what they
    made (posthog: one event per request; OpenTelemetry: the spans that ended)."""
    result = {}
    for worker in workers:
        if worker.skip is not None or not worker.drained or worker.variant == "bare":
            continue
        received = events.get(worker.segment, 0)
        counters = worker.drained.get("td_web")
        if worker.variant.startswith("td_web") and counters:
            dropped: dict[str, int] = counters["dropped"] or {}
            offered = counters["queued"] + dropped.get("queue_full", 0)
            lost = sum(dropped.values()) + counters["pending"]
            sent = counters["sent"]
            # Records expand into one or more signals on the sender; the share is in records
            # (what the requests offered), checked against the sink's count of signals.
            share = (offered - lost) / offered if offered else None
            if received != sent:
                share = (share or 0.0) * received / sent if sent else 0.0
            reasons = ", ".join(f"{n:,} {r}" for r, n in sorted(dropped.items())) or "none"
            detail = (
                f"{offered:,} records offered, {counters['queued']:,} queued, dropped: {reasons}, "
                f"{counters['pending']:,} still pending after a flush; {sent:,} signals sent, "
                f"{received:,} received by the sink"
            )
            result[worker.variant] = Delivery(worker.variant, offered, received, share, detail)
            continue
        made = worker.drained.get("made")
        if made is None:
            result[worker.variant] = Delivery(
                worker.variant,
                None,
                received or None,
                None,
                f"no per-request events to count (sink received {received:,} events)",
            )
        else:
            result[worker.variant] = Delivery(
                worker.variant,
                made,
                received,
                received / made if made else None,
                f"{made:,} made, {received:,} received by the sink",
            )
    return result


def print_framework(framework: str, rows: list[Row], workers: list[Worker], requests: int) -> None:
    print(f"\n## {framework} ({requests:,} requests per batch)\n")
    print(
        "| variant | µs/request | added µs | ratio to bare | request-thread CPU µs | added CPU µs |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {label(row.variant)} | {row.wall_us:.1f} | {row.added_us:+.1f} | "
            f"{row.ratio:.2f} | {row.cpu_us:.1f} | {row.cpu_added_us:+.1f} |"
        )
    for worker in workers:
        if worker.skip is not None:
            print(f"- {label(worker.variant)}: left out: {worker.skip}")
        blocked = worker.info.get("blocked")
        if blocked:
            print(f"- {label(worker.variant)}: refused non-loopback: {blocked}")
        counters = worker.info.get("td_web")
        if counters and worker.variant.startswith("td_web"):
            print(
                f"- {label(worker.variant)}: right after the last batch: queued "
                f"{counters['queued']:,}, sent {counters['sent']:,}, dropped "
                f"{counters['dropped'] or 0}"
            )


def print_deliveries(delivered: dict[str, Delivery]) -> None:
    for name, delivery in delivered.items():
        share = "-" if delivery.share is None else f"{delivery.share:.1%}"
        print(f"- delivered, {label(name)}: {share} ({delivery.detail})")


def verdict(framework: str, rows: list[Row]) -> str:
    """The issue's target: td_web's automatic signal adds at most a tenth of what the cheapest
    peer adds, in the same run; judged on wall time and on the request thread's CPU."""
    by_name = {row.variant: row for row in rows}
    td, custom = by_name.get("td_web"), by_name.get("td_web+signal")
    peers = [by_name[p] for p in PEERS if p in by_name]
    if td is None or not peers:
        return f"{framework}: no verdict (td_web or every peer missing)"
    parts = []
    for metric, value in (("wall", "added_us"), ("request-thread CPU", "cpu_added_us")):
        cheapest = min(peers, key=lambda row: float(getattr(row, value)))
        target = getattr(cheapest, value) / 10
        added = getattr(td, value)
        outcome = "met" if added <= target else f"missed by {added - target:.1f} µs"
        parts.append(
            f"{metric}: td_web +{added:.1f} µs, target ≤ {target:.1f} µs (a tenth of "
            f"{label(cheapest.variant)}) {outcome}"
        )
    text = f"{framework}: " + "; ".join(parts)
    sampled_out = by_name.get("td_web-sampled-out")
    if sampled_out is not None:
        text += (
            f"; a sampled-out request adds {sampled_out.added_us:+.1f} µs wall "
            f"({sampled_out.added_us - td.added_us:+.1f} µs against a tracked one), "
            f"{sampled_out.cpu_added_us:+.1f} µs request-thread CPU"
        )
    if custom is not None:
        text += (
            f"; a custom signal adds {custom.added_us - td.added_us:+.1f} µs wall, "
            f"{custom.cpu_added_us - td.cpu_added_us:+.1f} µs request-thread CPU"
        )
    return text


def summary(results: dict[str, list[Row]], delivered: dict[str, dict[str, Delivery]]) -> None:
    frameworks = list(results)
    for title, total, added in (
        ("wall-clock µs per request (added over bare)", "wall_us", "added_us"),
        ("request-thread CPU µs per request (added over bare)", "cpu_us", "cpu_added_us"),
    ):
        print(f"\n## Summary: {title}\n")
        print("| variant | " + " | ".join(frameworks) + " |")
        print("|---|" + "---:|" * len(frameworks))
        keys = list(dict.fromkeys(r.variant for rows in results.values() for r in rows))
        for name in keys:
            cells = []
            for framework in frameworks:
                row = next((r for r in results[framework] if r.variant == name), None)
                if row is None:
                    cells.append("-")
                elif name == "bare":
                    cells.append(f"{getattr(row, total):.0f}")
                else:
                    cells.append(
                        f"{getattr(row, total):.0f} ({getattr(row, added):+.0f}, {row.ratio:.2f}x)"
                        if added == "added_us"
                        else f"{getattr(row, total):.0f} ({getattr(row, added):+.0f})"
                    )
            if any(cell != "-" for cell in cells):
                print(f"| {label(name)} | " + " | ".join(cells) + " |")
    print("\n## Summary: delivered share after a flush (the sink's count against what was made)\n")
    print("| variant | " + " | ".join(frameworks) + " |")
    print("|---|" + "---:|" * len(frameworks))
    names = list(dict.fromkeys(n for shares in delivered.values() for n in shares))
    for name in names:
        cells = []
        for framework in frameworks:
            delivery = delivered.get(framework, {}).get(name)
            cells.append(
                "-" if delivery is None or delivery.share is None else f"{delivery.share:.1%}"
            )
        print(f"| {label(name)} | " + " | ".join(cells) + " |")
    print()
    for framework in frameworks:
        print("- " + verdict(framework, results[framework]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and repetitions")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--requests", type=int, help="requests per batch (default: sized to --budget)"
    )
    parser.add_argument(
        "--budget", type=float, help="seconds per repetition of all variants (default 3)"
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 5)")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run td_web from DIR (a directory holding an earlier td_web package, e.g. "
        "from `git archive`), interleaved with the current one: before and after in one run",
    )
    args = parser.parse_args(argv)
    args.budget = args.budget or (1.0 if args.quick else 3.0)
    args.reps = args.reps or (3 if args.quick else 5)
    args.warmup = 300
    variants = ["bare", *(v for v in args.variants.split(",") if v and v != "bare")]
    if args.baseline:
        # The baseline's twin of each td_web variant asked for (the plain one at least).
        twins = [v for v in ("td_web", "td_web+signal", "td_web-new") if v in variants]
        variants[1:1] = [v + "@baseline" for v in twins or ["td_web"]]
    unknown = [v for v in variants if v.partition("@")[0] not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    print(
        f"# td_web per-request overhead, {time.strftime('%Y-%m-%d')}, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.reps} interleaved repetitions (A B C A B C) after {args.warmup} warm-up "
        "requests per variant; medians"
    )
    results: dict[str, list[Row]] = {}
    delivered: dict[str, dict[str, Delivery]] = {}
    started = time.monotonic()
    with _sink.serve("sink") as sink:
        for framework in args.frameworks.split(","):
            rows, workers, requests = measure(framework, variants, sink, args)
            results[framework] = rows
            print_framework(framework, rows, workers, requests)
            uploads = _sink.counts(sink)
            names = {worker.segment: label(worker.variant) for worker in workers}
            received = {names[k]: v for k, v in uploads.items() if k in names}
            print(f"- uploads the local sink received: {received}")
            delivered[framework] = deliveries(workers, _sink.events(sink))
            print_deliveries(delivered[framework])
            sys.stdout.flush()
    summary(results, delivered)
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
