"""td_web.serverless: everything queued is sent before the handler returns, within the budget,
with no thread left behind; a process frozen between invocations loses and doubles nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer, Reply
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import td_web
from td_web.asgi import TelemetryDeckMiddleware
from td_web.serverless import TelemetryDeck, asgi, deliver, handler

#: Ends as soon as everything is delivered; generous only so a loaded machine cannot fail it.
GENEROUS = 30.0
RUNTIME = Path(__file__).with_name("function_runtime.py")


class FrozenFunction:
    """The runtime subprocess; between invocations it is stopped with SIGSTOP."""

    def __init__(self, ingest: IngestServer) -> None:
        env = {**os.environ, "TD_INGEST": ingest.url}
        self.process = subprocess.Popen(
            [sys.executable, str(RUNTIME)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.frozen = False

    def invoke(self, **event: Any) -> dict[str, Any]:
        if self.frozen:
            os.kill(self.process.pid, signal.SIGCONT)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        os.kill(self.process.pid, signal.SIGSTOP)  # returned: the platform freezes it
        self.frozen = True
        return reply

    def end(self) -> None:
        if self.frozen:
            os.kill(self.process.pid, signal.SIGCONT)
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def numbers(ingest: IngestServer) -> Counter[str]:
    return Counter(
        s["payload"]["Work.number"]
        for s in ingest.accepted_signals
        if s["type"] == "Invocation.work"
    )


def test_a_frozen_function_loses_and_doubles_nothing(ingest: IngestServer) -> None:
    function = FrozenFunction(ingest)
    try:
        # Healthy: delivered before the handler returned, no thread left to be frozen.
        reply = function.invoke(first=0, count=5, budget=GENEROUS)
        assert reply == {"result": {"statusCode": 200}, "error": None, "threads": [], "pending": 0}
        assert numbers(ingest) == Counter(str(n) for n in range(5))

        # The ingest fails: what was not accepted waits for the next invocation.
        ingest.default = Reply(status=503)
        reply = function.invoke(first=5, count=5, budget=GENEROUS)
        assert (reply["threads"], reply["pending"]) == ([], 5)

        # The ingest hangs: the budget cuts the request short; still no thread left behind.
        ingest.default = Reply(blackhole=True)
        reply = function.invoke(first=10, count=3, budget=0.5)
        assert (reply["threads"], reply["pending"]) == ([], 8)

        # While frozen, the server closes the idle keep-alive connections.
        ingest.default = Reply()
        ingest.drop_connections()
        reply = function.invoke(first=13, count=2, budget=GENEROUS, **{"raise": True})
        assert reply == {"result": None, "error": "RuntimeError", "threads": [], "pending": 0}
        assert numbers(ingest) == Counter(str(n) for n in range(15))  # each exactly once
    finally:
        function.end()


def lambda_adapter(app: Callable[..., Any]) -> Callable[[dict[str, Any], object], dict[str, Any]]:
    """What Mangum does: one event becomes one ASGI HTTP call on a fresh event loop."""

    def handle(event: dict[str, Any], context: object) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": event["method"],
                "scheme": "https",
                "path": event["path"],
                "raw_path": event["path"].encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [(b"host", b"fn.example.com"), *event.get("headers", [])],
                "client": ("203.0.113.9", 4711),
                "server": ("fn.example.com", 443),
            }
            answer: dict[str, Any] = {"body": b""}

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    answer["statusCode"] = message["status"]
                    answer["headers"] = message.get("headers", [])
                else:
                    answer["body"] += message.get("body", b"")

            await app(scope, receive, send)
            return answer

        return asyncio.run(call())

    return handle


@pytest.fixture
def function_client(ingest: IngestServer) -> Iterator[TelemetryDeck]:
    td = TelemetryDeck(app_id=APP_ID, salt="pepper", endpoint=ingest.url)
    yield td
    td.close(1)


def starlette_app(td: TelemetryDeck) -> Starlette:
    async def invoice(request: Request) -> PlainTextResponse:
        td_web.current().signal("Invoice.created")
        return PlainTextResponse("created")

    app = Starlette(routes=[Route("/invoices", invoice, methods=["POST"])])
    app.add_middleware(TelemetryDeckMiddleware, client=td, handle_sigterm=False)
    return app


def td_web_threads() -> set[threading.Thread]:
    """td_web's threads now (other tests' clients may have left theirs running)."""
    return {t for t in threading.enumerate() if t.name.startswith("td_web")}


@pytest.mark.parametrize("wrapping", ["handler around the adapter", "asgi around the app"])
def test_an_asgi_app_behind_a_lambda_adapter_delivers_each_request_before_returning(
    ingest: IngestServer, function_client: TelemetryDeck, wrapping: str
) -> None:
    app = starlette_app(function_client)
    if wrapping == "handler around the adapter":
        lambda_handler = handler(function_client, GENEROUS)(lambda_adapter(app))
    else:
        lambda_handler = lambda_adapter(asgi(app, function_client, GENEROUS))
    cookie: list[tuple[bytes, bytes]] = []
    threads_before = td_web_threads()
    for invocation in range(3):
        answer = lambda_handler({"method": "POST", "path": "/invoices", "headers": cookie}, None)
        assert (answer["statusCode"], answer["body"]) == (200, b"created")
        cookie = [
            (b"cookie", value.split(b";")[0])
            for name, value in answer["headers"]
            if name == b"set-cookie"
        ] or cookie
        # Already delivered: nothing waits, and no td_web thread outlives the invocation.
        signals = ingest.accepted_signals
        assert [s["type"] for s in signals].count("Invoice.created") == invocation + 1
        assert td_web_threads() <= threads_before
    # The visitor's cookie made one session across the three invocations.
    assert len({s["sessionID"] for s in ingest.accepted_signals}) == 1
    assert len(ingest.requests) == 3  # one request per invocation, over one connection each


def test_a_handler_that_raises_keeps_its_exception_and_delivers_first(
    ingest: IngestServer, function_client: TelemetryDeck
) -> None:
    failure = LookupError("no such invoice")

    @handler(function_client, budget=1.0)
    async def lambda_handler(event: dict[str, Any], context: object) -> None:
        function_client.signal("Invoice.lookup")
        raise failure

    with pytest.raises(LookupError) as raised:
        asyncio.run(lambda_handler({}, None))
    assert raised.value is failure
    assert [s["type"] for s in ingest.accepted_signals] == ["Invoice.lookup"]


def test_an_ordinary_client_is_accepted_with_a_warning(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    background = td_web.TelemetryDeck(app_id=APP_ID, endpoint=ingest.url)
    try:
        wrapped = handler(background)(lambda event, context: "ok")
        assert wrapped({}, None) == "ok"
        assert "keeps a background thread between invocations" in caplog.text
    finally:
        background.close(1)


def test_retry_after_is_honoured_across_invocations(
    ingest: IngestServer, function_client: TelemetryDeck
) -> None:
    ingest.script(Reply(status=429, headers={"Retry-After": "60"}))
    function_client.signal("Invoice.created")
    assert not deliver(function_client, GENEROUS)
    function_client.signal("Invoice.created")
    assert not deliver(function_client, GENEROUS)  # the next invocation keeps the pause
    assert len(ingest.requests) == 1
    assert function_client.stats().pending == 2


def test_a_spool_path_starts_no_thread(ingest: IngestServer, tmp_path: Path) -> None:
    threads_before = td_web_threads()
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, spool_path=str(tmp_path / "spool"))
    try:
        td.signal("Invoice.created")
        assert td_web_threads() <= threads_before
        assert deliver(td, GENEROUS)
        assert [s["type"] for s in ingest.accepted_signals] == ["Invoice.created"]
    finally:
        td.close(1)


def test_a_batch_exactly_max_batch_bytes_long_is_one_request(ingest: IngestServer) -> None:
    """As for the background sender: n signals take n - 1 commas and two brackets, so a
    batch that reaches ``max_batch_bytes`` exactly is one request, not cut one signal early."""

    def send_all(**options: Any) -> None:
        td = TelemetryDeck(app_id=APP_ID, salt="s", endpoint=ingest.url, **options)
        try:
            for i in range(8):
                td.signal("Exact.fit", {"blob": "x" * 200, "i": i}, session_id="s")
            assert deliver(td, GENEROUS)
        finally:
            td.close(1)

    send_all()
    (whole,) = ingest.requests
    ingest.requests.clear()
    send_all(max_batch_bytes=len(whole.raw))
    (exact,) = ingest.requests
    assert len(exact.raw) == len(whole.raw) and len(json.loads(exact.raw)) == 8
