"""Calling an application in-process, exactly as a server would, without a server or a socket.

WSGI: a prebuilt environ, copied per request (applications write into it), a fresh empty
``wsgi.input``, the body iterated and closed. ASGI: a prebuilt ``http`` scope, copied per
request, a ``receive`` that hands over an empty body and then waits (as a connection that stays
open does: Django listens for a disconnect meanwhile), and a ``send`` that keeps the status.

Every variant of a framework goes through the same driver, so its own cost cancels out in the
difference to the bare application.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

PATH = "/items/42"
HOST = "localhost:8000"
#: The visitor's td_web session (the sampled-out variant computes its rate from it).
SESSION_TOKEN = "q2Jm0eTYrW1xH8vN3kLp5cZa"
#: A returning browser visitor: td_web's session cookie, a same-site referer, a language.
HEADERS: list[tuple[str, str]] = [
    ("host", HOST),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-language", "en-GB,en;q=0.7,de;q=0.3"),
    ("referer", f"http://{HOST}/items/41"),
    ("cookie", f"td_session={SESSION_TOKEN}; theme=dark"),
]

#: (status, body) of one request.
Answer = tuple[int, bytes]


class WSGIDriver:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": PATH,
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "50000",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in HEADERS:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        self.environ = environ

    def request(self) -> Answer:
        status: list[str] = []

        def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(line)
            return None

        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = self.app(environ, start_response)
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return int(status[-1][:3]), content

    def run(self, count: int) -> None:
        request = self.request
        for _ in range(count):
            request()

    def forget_cookies(self) -> None:
        """A new visitor on every request: no cookie is sent (and none kept)."""
        self.environ.pop("HTTP_COOKIE", None)


ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class ASGIDriver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan: asyncio.Task[None] | None = None
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in HEADERS],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        self._lifespan_started = False

    async def _one(self) -> Answer:
        scope = dict(self.scope)
        scope["state"] = {}
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.get_running_loop().create_future()  # never resolves: no disconnect
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def _many(self, count: int) -> None:
        one = self._one
        for _ in range(count):
            await one()

    def request(self) -> Answer:
        return self.loop.run_until_complete(self._one())

    def run(self, count: int) -> None:
        self.loop.run_until_complete(self._many(count))

    def forget_cookies(self) -> None:
        """A new visitor on every request: no cookie is sent (and none kept)."""
        self.scope["headers"] = [(n, v) for n, v in self.scope["headers"] if n != b"cookie"]

    def start_lifespan(self, timeout: float = 10.0) -> None:
        """Send ``lifespan.startup`` (some SDKs start their workers there) and leave the
        lifespan task running, as a server does."""
        started = self.loop.create_future()
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        messages.put_nowait({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup") and not started.done():
                started.set_result(message["type"])

        async def lifespan() -> None:
            # An app without lifespan support raises: then there is nothing to start.
            with contextlib.suppress(Exception):
                scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
                await self.app(scope, messages.get, send)
            if not started.done():
                started.set_result("unsupported")

        # Kept: the loop holds its tasks weakly, and a lifespan task collected mid-run is closed
        # in whichever request the collector runs (the app then answers a shutdown failure
        # there, and its cost was counted as that request's).
        self._lifespan = self.loop.create_task(lifespan())
        deadline = time.monotonic() + timeout
        while not started.done() and time.monotonic() < deadline:
            self.loop.run_until_complete(asyncio.sleep(0.01))
