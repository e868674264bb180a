"""``td-web demo``: the collector, the example Django site against it, realistic traffic, and
a summary of what arrived, in one command that works offline on a fresh machine."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..collector import Collector
from .report import summarize
from .site import Site
from .traffic import count_actions, drive

__all__ = ["main"]


class Progress:
    """A one-line progress bar on a terminal; a plain count elsewhere."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.live = stream.isatty()

    def tick(self, label: str) -> None:
        self.done += 1
        if self.live:
            filled = round(30 * self.done / self.total)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r  traffic [{bar}] {self.done}/{self.total} {label:<16}")
            self.stream.flush()

    def finish(self, requests: int) -> None:
        prefix = "\r" if self.live else ""
        self.stream.write(
            f"{prefix}  traffic: {self.done} visits done, {requests} requests{' ' * 30}\n"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="td-web demo", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=8787, help="collector port (8787; a free one when it is taken)"
    )
    parser.add_argument("--db", help="collector database (default: a fresh temporary file)")
    parser.add_argument("--visitors", type=int, default=8, help="how many visitors (8)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the traffic (7)")
    wait = parser.add_mutually_exclusive_group()
    wait.add_argument(
        "--wait",
        dest="wait",
        action="store_true",
        default=None,
        help="keep the live page up until Ctrl-C (default on a terminal)",
    )
    wait.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="exit after the summary (default when not on a terminal)",
    )
    return parser


def start_collector(db: str, port: int) -> Collector:
    try:
        return Collector(db, port=port).start()
    except OSError:
        return Collector(db, port=0).start()


def wait_for_quiet(collector: Collector, settle: float = 1.0, timeout: float = 30.0) -> None:
    """Until no new signal arrived for ``settle`` seconds (the site has flushed)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = collector.stats(minutes=0)["total_signals"]
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= settle:
            return
        time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    wait = args.wait if args.wait is not None else (sys.stdin.isatty() and out.isatty())
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="td-web-demo-")))
        db = args.db or str(workdir / "collector.sqlite3")
        collector = start_collector(db, args.port)
        stack.callback(collector.stop)
        print(f"td_web demo\n  collector  {collector.url}  (database {db})", file=out)
        log = stack.enter_context(open(workdir / "site.log", "w"))
        site = Site(collector.url, workdir, log)
        print(f"  site       {site.url}  (example_projects/django_site, runserver)", file=out)
        try:
            site.start()
        except Exception as exc:
            log.flush()
            print(
                f"the example site did not start: {exc}\n"
                f"{(workdir / 'site.log').read_text()[-3000:]}",
                file=sys.stderr,
            )
            return 1
        progress = Progress(count_actions(args.visitors, args.seed), out)
        try:
            tally = drive(site.url, args.visitors, args.seed, progress.tick)
            progress.finish(tally.requests)
        finally:
            code = site.stop()
        print(
            f"  site stopped with Ctrl-C (exit {code}); its exit flush sent what was queued",
            file=out,
        )
        wait_for_quiet(collector)
        summary = summarize(collector.signals(), collector.violations(), tally)
        print("\n" + summary.text, file=out)
        print(f"\nLive page: {collector.url}/", file=out)
        out.flush()
        if wait:
            print("Press Ctrl-C to stop the collector.", file=out)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0 if summary.ok else 1
    return 1
