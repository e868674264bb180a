"""A stand-in for a function platform's runtime: one JSON event per stdin line, one JSON reply
per stdout line. The test freezes this process (SIGSTOP) between invocations, as Lambda does."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from td_web.serverless import TelemetryDeck, handler

td = TelemetryDeck(
    app_id="B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE",
    endpoint=os.environ["TD_INGEST"],
    # No pause between invocations after a failure: the test invokes again at once.
    initial_backoff=0,
    max_backoff=0,
)


def work(event: dict[str, Any], context: object) -> dict[str, Any]:
    for number in range(event["first"], event["first"] + event["count"]):
        td.signal("Invocation.work", {"Work.number": number})
    if event.get("raise"):
        raise RuntimeError("the handler failed")
    return {"statusCode": 200}


for line in sys.stdin:
    event = json.loads(line)
    try:
        # The budget comes with the event so that the test can vary it per invocation.
        lambda_handler = handler(td, budget=event.pop("budget"))(work)
        reply: dict[str, Any] = {"result": lambda_handler(event, None), "error": None}
    except Exception as exc:
        reply = {"result": None, "error": type(exc).__name__}
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    reply.update(threads=others, pending=td.stats().pending)
    print(json.dumps(reply), flush=True)
