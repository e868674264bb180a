"""``td_web.django.asgi``: Django's ASGI app answering the lifespan protocol, delivering queued
signals at shutdown (uvicorn kills the process right after it, without running atexit)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import override_settings
from ingest_server import IngestServer
from td_django_helpers import telemetry_settings

from td_web.django.asgi import LifespanFlush, get_asgi_application


class Channel:
    """The server's side of one ASGI call: scripted messages in, sent messages recorded."""

    def __init__(self, *incoming: dict[str, Any]) -> None:
        self.incoming = list(incoming)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.incoming:
            return self.incoming.pop(0)
        await asyncio.Event().wait()  # the client stays connected; Django cancels this wait
        raise AssertionError("unreachable")

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))


def _http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def test_lifespan_shutdown_delivers_what_is_queued(ingest: IngestServer) -> None:
    application = get_asgi_application()
    with override_settings(
        TELEMETRYDECK=telemetry_settings(ENDPOINT=ingest.url, FLUSH_INTERVAL=3600)
    ):
        lifespan = Channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
        http = Channel({"type": "http.request", "body": b"", "more_body": False})

        await application(_http_scope("/async/"), http.receive, http.send)
        assert http.sent[0]["status"] == 200
        assert ingest.accepted_signals == []  # an hour's flush interval: nothing sent yet

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        await application(scope, lifespan.receive, lifespan.send)

        assert [m["type"] for m in lifespan.sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert {s["type"] for s in ingest.accepted_signals} == {
            "TelemetryDeck.Session.started",
            "pageView",
        }


async def test_lifespan_without_any_request_completes() -> None:
    lifespan = Channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})

    await get_asgi_application()({"type": "lifespan"}, lifespan.receive, lifespan.send)

    assert [m["type"] for m in lifespan.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_a_wrapped_app_whose_startup_crashes_reaches_the_server() -> None:
    """An application that speaks lifespan keeps its own conversation under the wrapper: its
    startup error reaches the server, and td_web does not claim the startup completed."""

    async def crashing(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        raise ConnectionError("the database is unreachable")

    lifespan = Channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    with pytest.raises(ConnectionError):
        await LifespanFlush(crashing)({"type": "lifespan"}, lifespan.receive, lifespan.send)
    assert lifespan.sent == []


async def test_a_wrapped_app_that_speaks_lifespan_keeps_its_conversation() -> None:
    async def speaking(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    lifespan = Channel({"type": "lifespan.startup"})
    await LifespanFlush(speaking)({"type": "lifespan"}, lifespan.receive, lifespan.send)
    assert lifespan.sent == [{"type": "lifespan.startup.failed", "message": "no database"}]
