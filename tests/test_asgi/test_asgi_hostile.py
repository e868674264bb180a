"""Hostile requests through a Starlette app, as raw ASGI calls: huge and malformed headers,
invalid and forged cookies, odd Accept-Language, Referer and Host values, invalid UTF-8 in
paths, plus what only ASGI hands over as bytes: header values that are not valid UTF-8 and raw
paths with invalid UTF-8. Each is answered exactly as the same app answers it without td_web;
td_web logs no error, drops nothing, and what it sends passes the collector's validation."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from ingest_server import IngestServer
from privacy_canaries import (
    HOSTILE_REQUESTS,
    HostileRequest,
    IngestWindow,
    asgi_cases,
    asgi_scope,
    call_asgi,
    check_hostile_outcome,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from td_web import TelemetryDeck
from td_web.asgi import TelemetryDeckMiddleware


async def echo(request: Request) -> Response:
    """What Starlette made of the request: td_web must not change any of it."""
    facts = {
        "method": request.method,
        "path": request.scope["path"],
        "raw_path": request.scope.get("raw_path"),
        "query": request.query_params.multi_items(),
        "cookies": sorted(request.cookies.items()),
        "headers": request.headers.items(),
        "body": await request.body(),
    }
    return HTMLResponse(f"<pre>{facts!a}</pre>")


def _make_app(client: TelemetryDeck | None) -> Starlette:
    """The same app, with td_web (sending through ``client``) or without."""
    middleware = []
    if client is not None:
        middleware.append(Middleware(TelemetryDeckMiddleware, client=client, respect_gpc=True))
    return Starlette(routes=[Route("/{rest:path}", echo)], middleware=middleware)


@pytest.mark.parametrize("case", asgi_cases())
async def test_hostile_request(
    case: HostileRequest,
    module_ingest: IngestServer,
    module_client: TelemetryDeck,
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = IngestWindow(module_ingest)
    without = await call_asgi(_make_app(None), asgi_scope(case))
    with_td_web = await call_asgi(_make_app(module_client), asgi_scope(case))

    check_hostile_outcome(case, with_td_web, without, module_client, window, caplog.records)


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
    app = TelemetryDeckMiddleware(_make_app(None), client=module_client, **options)

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
