"""The sender thread's CPU per page view: turning one handled request into its automatic
signals (session start, page view) and serializing them, td_web now against an earlier td_web.

    .venv/bin/python bench/page_view_cost.py --baseline DIR [--views 20000] [--reps 5]

DIR holds an earlier td_web package (``git archive <commit> td_web | tar -x -C DIR``). Each
repetition runs the baseline and the current td_web in fresh processes, one after the other
(A B A B ...), and reports the median thread CPU time per page view of each (and per signal: a
page view of a new session is two signals), and their ratio. With orjson installed (the ``fast``
extra) the current td_web runs twice, with and without it ("stdlib json": as if not installed).
Two User-Agent mixes: "site" cycles through the 37 real headers of tests/user_agent_cases.py
that are not crawlers (a site sees the same few again and again, so the parse cache answers),
"unique" makes every header distinct (each one parsed: the worst case).

What is measured is what the sender does with a queued record (``RecordEncoder.entries``: its
signals built and encoded, or written as JSON straight away). ``--instructions`` counts the
instructions of that with valgrind instead of timing it (one child per tree, deterministic:
the figure to compare on a shared, loaded machine).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _page_views(views: int, mix: str) -> tuple[Any, list[Any]]:
    """A client's signal builder and the records of ``views`` handled HTML requests."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _variants import APP_ID
    from user_agent_cases import CASES

    from td_web import RequestView
    from td_web._web import WebTelemetry

    try:
        from td_web._web.request_signals import RequestSignals
    except ImportError:  # a --baseline tree from before the record had its own module
        from td_web._web.telemetry import RequestSignals  # type: ignore[no-redef]

    web = WebTelemetry.from_options(
        {
            "app_id": APP_ID,
            "salt": "bench",
            "endpoint": "http://127.0.0.1:9",
            "flush_interval": 3600,
            "handle_sigterm": False,
        }
    )
    builder = web.client.builder
    agents = [case.user_agent for case in CASES if case.kind != "bot"]
    records = []
    for number in range(views):
        agent = agents[number % len(agents)]
        if mix == "unique":
            agent = f"{agent} build/{number}"
        view = RequestView(
            method="GET",
            scheme="https",
            host="shop.example",
            path=f"/products/{number % 50}/",
            query_string="utm_source=newsletter&page=2" if number % 4 == 0 else "",
            user_agent=agent,
            referer="https://shop.example/" if number % 2 else "https://www.google.com/",
            accept_language="de-DE,de;q=0.9,en;q=0.8",
            cookies=None,
            client_addr="203.0.113.9",
        )
        records.append(
            RequestSignals(
                web,
                view,
                200,
                "/products/<int:id>/",
                0.012,
                True,
                None,
                f"session-{number % 500:04d}-abcdefgh",
                number % 5 == 0,
                None,
                None,
            )
        )
    return builder, records


def child(views: int, mix: str) -> tuple[float, float]:
    """µs of this thread's CPU per page view and per signal, measured in this process."""
    if os.environ.get("BENCH_NO_ORJSON"):
        sys.modules["orjson"] = None  # type: ignore[assignment]  # as if not installed
    builder, records = _page_views(views, mix)
    encode = _record_encoder(builder, records[0].web.client.config)
    # Warm-up: the rules' compilation and the caches are not what is measured.
    for record in records[:200]:
        encode(record)
    if os.environ.get("BENCH_SKIP_LOOP"):  # --instructions: everything but the loop
        return 0.0, 0.0
    gc.disable()  # (the collector's passes fall where they fall: not counted in either tree)
    signals = 0
    start = time.thread_time()
    for record in records:
        signals += len(encode(record))
    elapsed = time.thread_time() - start
    gc.enable()
    print(json.dumps({"signals": signals}))
    return elapsed / views * 1e6, elapsed / signals * 1e6


def _record_encoder(builder: Any, config: Any) -> Callable[[Any], list[Any]]:
    """What the sender does to a queued record (its signals built and encoded, or written as
    JSON straight away), in whichever td_web is on the path."""
    try:
        from td_web._encoding import RecordEncoder
    except ImportError:  # a --baseline tree from before the record encoder
        encode = _built_signal_encoder()
        return lambda record: [encode(signal) for signal in record.signals(builder)]
    encoder = RecordEncoder(config, builder, lambda reason, count: None)
    return lambda record: encoder.entries(record, 0)


def post_share(url: str, batch_size: int, posts: int) -> tuple[float, float]:
    """µs of this thread's CPU per POST of ``batch_size`` encoded page-view signals to a local
    sink (the HTTP library's work only: the signals are built and encoded beforehand), and
    per signal."""
    from td_web._transport import Transport

    encode = _built_signal_encoder()
    builder, records = _page_views(batch_size, "site")
    signals = [encode(s) for record in records for s in record.signals(builder)][:batch_size]
    body = b"[" + b",".join(signals) + b"]"
    transport = Transport(url + "/v2/", timeout=10)
    for _ in range(20):  # warm-up: the client, its connection, the library's imports
        transport.post(body)
    start = time.thread_time()
    for _ in range(posts):
        transport.post(body)
    elapsed = time.thread_time() - start
    transport.close()
    return elapsed / posts * 1e6, elapsed / posts / len(signals) * 1e6


def _built_signal_encoder() -> Callable[[dict[str, Any]], bytes]:
    """What the sender does to a built signal, in whichever td_web is on the path."""
    try:
        from td_web._encoding import encode_built_bytes

        return encode_built_bytes
    except ImportError:  # a --baseline tree from before the sender took bytes
        pass
    try:
        from td_web._encoding import encode_built_json
    except ImportError:  # a --baseline tree from before the encoding had its own module
        from td_web._sender import (  # type: ignore[attr-defined,no-redef]
            _encode_built_json as encode_built_json,
        )
    return lambda signal: encode_built_json(signal).encode("utf-8", "surrogatepass")


def run_child(
    baseline: str | None, views: int, mix: str, orjson: bool = True
) -> tuple[float, float]:
    env = dict(os.environ)
    if not orjson:
        env["BENCH_NO_ORJSON"] = "1"
    if baseline:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))
    output = subprocess.run(
        [sys.executable, __file__, "--child", mix, "--views", str(views)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    result = json.loads(output.splitlines()[-1])
    return float(result["view"]), float(result["signal"])


_CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def instructions(baseline: str | None, views: int, mix: str) -> tuple[float, float]:
    """Instructions per page view and per signal, counted by valgrind (deterministic, so a
    loaded machine does not blur them): a child that encodes ``views`` records against one
    that stops just before the loop."""
    counts = []
    signals = 0
    for skip in (False, True):
        env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict probes in every run
        if skip:
            env["BENCH_SKIP_LOOP"] = "1"
        if baseline:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [baseline, env.get("PYTHONPATH")]))
        done = subprocess.run(
            [*_CALLGRIND, sys.executable, __file__, "--child", mix, "--views", str(views)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        counts.append(int(done.stderr.split("Collected : ")[1].split()[0]))
        if not skip:
            signals = json.loads(done.stdout.splitlines()[-2])["signals"]
    added = counts[0] - counts[1]
    return added / views, added / signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="DIR")
    parser.add_argument("--views", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--mix", nargs="+", choices=("site", "unique"), default=["site", "unique"])
    parser.add_argument("--child", choices=("site", "unique"))
    parser.add_argument(
        "--posts", type=int, default=0, help="also measure the POST's share with this many POSTs"
    )
    parser.add_argument(
        "--no-stdlib", action="store_true", help="skip the current tree without orjson"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions with valgrind instead (one run per tree; ~1 min per 10,000)",
    )
    args = parser.parse_args()
    if args.child:
        view, signal = child(args.views, args.child)
        print(json.dumps({"view": view, "signal": signal}))
        return
    if args.instructions:
        print(
            f"# instructions per page view (per signal in brackets), valgrind, "
            f"{time.strftime('%Y-%m-%d')}, {args.views:,} page views per process"
        )
        print(
            f"{'User-Agent mix':<16}"
            + (f"{'baseline':>21}" if args.baseline else "")
            + f"{'current':>21}{'ratio':>8}"
        )
        for mix in args.mix:
            base = instructions(args.baseline, args.views, mix) if args.baseline else None
            now = instructions(None, args.views, mix)
            ratio = f"{now[0] / base[0]:.2f}" if base else ""
            print(
                f"{mix:<16}"
                + (f"{base[0]:>11,.0f} [{base[1]:>7,.0f}]" if base else "")
                + f"{now[0]:>11,.0f} [{now[1]:>7,.0f}]{ratio:>8}"
            )
        return
    print(
        f"# sender CPU per page view, {time.strftime('%Y-%m-%d')}, {args.views:,} page views "
        f"per process, {args.reps} interleaved repetitions; medians"
    )
    variants = ["baseline", "stdlib json", "current"]
    fast = importlib.util.find_spec("orjson") is not None
    if not fast or args.no_stdlib:
        variants.remove("stdlib json")  # "current" is the standard library's encoder then
    print("µs of sender-thread CPU per page view (per signal in brackets)")
    print(f"{'User-Agent mix':<16}" + "".join(f"{name:>20}" for name in variants) + f"{'ratio':>8}")
    for mix in args.mix:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.reps):
            if args.baseline:
                runs["baseline"].append(run_child(args.baseline, args.views, mix))
            if "stdlib json" in runs:
                runs["stdlib json"].append(run_child(None, args.views, mix, orjson=False))
            runs["current"].append(run_child(None, args.views, mix))
        medians = {
            name: (
                statistics.median(view for view, _ in results) if results else float("nan"),
                statistics.median(signal for _, signal in results) if results else float("nan"),
            )
            for name, results in runs.items()
        }
        cells = "".join(f"{view:>11.1f} [{signal:>5.1f}]" for view, signal in medians.values())
        ratio = medians["current"][0] / medians["baseline"][0]
        print(f"{mix:<16}{cells}{ratio:>8.2f}")
    print(f"# load average at the end: {os.getloadavg()[0]:.2f}")
    if args.posts:
        from _sink import serve

        print("\nthe POST's share: µs of sender-thread CPU per POST to a local sink (current)")
        print(f"{'signals per POST':<18}{'per POST':>10}{'per signal':>12}")
        with serve("sink") as url:
            for size in (100, 500, 1000):
                results = [post_share(url, size, args.posts) for _ in range(args.reps)]
                per_post = statistics.median(post for post, _ in results)
                per_signal = statistics.median(signal for _, signal in results)
                print(f"{size:<18}{per_post:>10.0f}{per_signal:>12.1f}")


if __name__ == "__main__":
    main()
