"""Hostile requests only the ASGI adapter meets: a client that disconnects before the app
answers, and a flood of unique huge headers (what td_web keeps of them). The hostile-request
cases every adapter shares are in ``test_adapters/test_hostile.py``."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from ingest_server import IngestServer
from privacy_canaries import HOSTILE_REQUESTS, HostileRequest, IngestWindow, asgi_scope, call_asgi
from test_adapters.hostile_starlette import starlette_app

from td_web import TelemetryDeck
from td_web.asgi import TelemetryDeckMiddleware


async def test_a_disconnecting_client_with_a_hostile_request(
    module_ingest: IngestServer, module_client: TelemetryDeck, caplog: pytest.LogCaptureFixture
) -> None:
    """The module_client goes away before the app answers: nothing escapes but what the app raises
    itself, and the request is recorded as 499."""
    window = IngestWindow(module_ingest)

    async def waits_for_disconnect(scope: dict[str, object], receive: object, send: object) -> None:
        while (await receive())["type"] != "http.disconnect":  # type: ignore[operator]
            pass

    case = HOSTILE_REQUESTS[-1]  # everything at once
    app = TelemetryDeckMiddleware(waits_for_disconnect, client=module_client)
    scope = asgi_scope(case)
    messages = [{"type": "http.request", "body": b"x", "more_body": True}]

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: object) -> None:
        raise AssertionError("nothing is sent to a module_client that went away")

    await app(scope, receive, send)

    assert module_client.flush(5)
    sent = [s for s in window.signals if s["type"] == "HTTP.request"]
    assert [s["payload"]["HTTP.statusCode"] for s in sent] == ["499"]
    assert [r for r in caplog.records if r.name == "td_web" and r.levelno >= 40] == []


@pytest.mark.parametrize(
    "options",
    [pytest.param({"cookieless": True}, id="cookieless"), {"session_from_cookie": "sid"}],
)
async def test_unique_huge_headers_leave_no_memory_behind(
    options: dict[str, Any], module_ingest: IngestServer, module_client: TelemetryDeck
) -> None:
    """A module_client sending a new 4 KB User-Agent and session cookie with every request: td_web
    keeps a few hundred bytes per session it has seen, not the kilobytes it was sent."""
    app = TelemetryDeckMiddleware(starlette_app(None), client=module_client, **options)

    def case(i: int) -> HostileRequest:
        filler = b"%06d" % i + b"x" * 4096
        headers = ((b"user-agent", b"Mozilla/5.0 " + filler), (b"cookie", b"sid=" + filler))
        return HostileRequest(f"unique-{i}", headers=headers)

    for i in range(20):  # warm up: caches and lazily built state exist before measuring
        await call_asgi(app, asgi_scope(case(i)))
    assert module_client.flush(5)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        count = 100
        for i in range(1000, 1000 + count):
            await call_asgi(app, asgi_scope(case(i)))
        assert module_client.flush(5)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    only_td_web = [tracemalloc.Filter(True, "*/td_web/*")]
    grown = after.filter_traces(only_td_web).compare_to(
        before.filter_traces(only_td_web), "filename"
    )
    retained = sum(stat.size_diff for stat in grown)
    assert retained / count < 2048, [str(stat) for stat in grown[:5]]
