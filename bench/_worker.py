"""One (framework, variant) app in a process of its own, timed on request by the parent.

    python bench/_worker.py FRAMEWORK VARIANT SINK_URL

Line protocol on stdin/stdout (stdout is reserved for it; anything a library prints goes to
stderr): the worker first answers ``{"ready": true}`` or ``{"skip": reason}``; then

* ``run N``: N requests back to back; answers ``{"wall": s, "cpu": s}``: wall-clock seconds and
  the CPU seconds of the requesting thread alone (background threads excluded);
* ``info``: connections refused by the loopback guard, and td_web's counters;
* ``drain``: every SDK flushes what it holds (as a server does at a graceful exit), then
  answers with the requests served, the events the SDK made (where it can tell) and td_web's
  counters, so the parent can compare them with what the sink received;
* ``quit``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from typing import Any, TextIO

import _loopback


def _answer(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _td_web_counters() -> dict[str, Any] | None:
    if "td_web._sender" not in sys.modules:
        return None
    from td_web._sender import _live_senders

    queued = sent = pending = 0
    dropped: dict[str, int] = {}
    for sender in list(_live_senders):
        stats = sender.stats()
        queued += stats.queued
        sent += stats.sent
        pending += stats.pending
        for reason, count in stats.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
    return {"queued": queued, "sent": sent, "dropped": dropped, "pending": pending}


def _flush_td_web(timeout: float) -> bool | None:
    if "td_web._sender" not in sys.modules:
        return None
    from td_web._sender import _live_senders

    return all(sender.flush(timeout) for sender in list(_live_senders))


def serve(framework: str, variant_name: str, sink: str) -> None:
    # The protocol keeps the real stdout; print() from any library lands on stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _loopback.install()

    from _apps import build
    from _variants import VARIANTS

    variant = VARIANTS[variant_name]
    reason = variant.missing()
    if reason is not None:
        _answer(out, {"skip": reason})
        return
    try:
        driver = build(framework, variant, sink)
        if variant.new_visitor:
            driver.forget_cookies()
        status, body = driver.request()
    except Exception as exc:
        _answer(out, {"skip": f"could not be set up: {type(exc).__name__}: {exc}"})
        raise
    if status != 200 or b"item 42" not in body:
        _answer(out, {"skip": f"the app answered {status} {body[:80]!r}"})
        return
    # td_web compiles its User-Agent rules in a thread of its own at start-up (a few hundred
    # ms of CPU): timed batches must not share the interpreter lock with that one-off work.
    for thread in threading.enumerate():
        if thread.name == "td_web-ua-rules":
            thread.join(30)
    _answer(out, {"ready": True})
    served = 1
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "run":
            count = int(argument)
            gc.collect()
            wall, cpu = time.perf_counter(), time.thread_time()
            driver.run(count)
            served += count
            _answer(out, {"wall": time.perf_counter() - wall, "cpu": time.thread_time() - cpu})
        elif command == "info":
            _answer(out, {"blocked": _loopback.blocked, "td_web": _td_web_counters()})
        elif command == "drain":
            flushed = _flush_td_web(30.0)
            variant.flush()
            _answer(
                out,
                {
                    "served": served,
                    "made": variant.events_made(served),
                    "flushed": flushed,
                    "td_web": _td_web_counters(),
                },
            )
        else:
            return


if __name__ == "__main__":
    serve(*sys.argv[1:4])
