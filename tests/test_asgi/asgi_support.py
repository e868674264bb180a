"""Helpers for the ASGI adapter's tests: a tiny in-process ASGI server and Starlette's client."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from conftest import APP_ID

with warnings.catch_warnings():
    # Starlette 1.x recommends httpx2 for its test client; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["APP_ID", "ASGIServer", "LifespanServer", "TestClient", "http_scope"]


Message = MutableMapping[str, Any]
App = Callable[[Any, Any, Any], Awaitable[None]]


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    root_path: str = "",
    query_string: bytes = b"",
    **extra: Any,
) -> dict[str, Any]:
    """An ``http`` scope the way an ASGI server builds it."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": query_string,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("203.0.113.7", 50123),
        "server": ("testserver", 80),
    }
    scope.update(extra)
    return scope


class ASGIServer:
    """Drives one ASGI call: feeds ``incoming`` messages to receive (then waits for ever, or
    reports a disconnect), records what the app sends, and can fail sends like a server whose
    client went away."""

    def __init__(
        self,
        incoming: Iterable[Message] = ({"type": "http.request", "body": b""},),
        *,
        disconnect_after_sends: int | None = None,
    ) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []
        self.disconnect_after_sends = disconnect_after_sends

    async def receive(self) -> Message:
        if self.incoming:
            return self.incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.disconnect_after_sends is not None and len(self.sent) >= (
            self.disconnect_after_sends
        ):
            raise OSError("client disconnected")
        self.sent.append(message)

    async def run(self, app: App, scope: MutableMapping[str, Any]) -> list[Message]:
        await app(scope, self.receive, self.send)
        return self.sent

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.sent[0].get("headers", []) if k == name]


class LifespanServer:
    """The server side of a lifespan conversation: startup, then shutdown; records the types
    of the messages the application sends."""

    def __init__(self) -> None:
        self.incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        self.sent: list[str] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message["type"])
