"""A real HTTP server on loopback that speaks the ingest protocol, records every batch, and
injects faults on demand (statuses, Retry-After, delays, black holes, connection resets).

Tests use it instead of mocks: what the SDK sends crosses a real socket and a real HTTP parser.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server does with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"ok":true}'
    delay: float = 0.0
    #: Accept the request, then never answer (until the server stops).
    blackhole: bool = False
    #: Read the request, then reset the connection instead of answering.
    reset: bool = False
    #: Send the status line and half the headers, then reset the connection.
    reset_mid_response: bool = False
    #: Whether the batch counts as received (a 2xx does; faults do not).
    accept: bool | None = None
    #: Hold the answer until this is set (or the server stops): requests held at once are
    #: requests in flight at once, deterministically.
    until: threading.Event | None = None

    @property
    def accepted(self) -> bool:
        if self.accept is not None:
            return self.accept
        return 200 <= self.status < 300 and not (
            self.reset or self.blackhole or self.reset_mid_response
        )


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes
    reply: Reply
    received_at: float = field(default_factory=time.monotonic)

    @property
    def batch(self) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = json.loads(self.raw)
        return parsed


class IngestServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque()
        self.default = Reply()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        server = self
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class(server))
        self._httpd.daemon_threads = True
        # Polling every 10 ms (not the default half second) lets a test stop it at once.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    # -- control -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> IngestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down for real: the listening socket and every open keep-alive connection close."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every open keep-alive connection, as a server does with idle ones."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> IngestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order; then the default."""
        with self._lock:
            self._script.extend(replies)

    # -- what arrived ----------------------------------------------------------------------

    @property
    def accepted_signals(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s for r in self.requests if r.reply.accepted for s in r.batch]

    @property
    def accepted_batches(self) -> list[list[dict[str, Any]]]:
        with self._lock:
            return [r.batch for r in self.requests if r.reply.accepted]

    def wait_for_signals(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` signals were accepted; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                signals = [s for r in self.requests if r.reply.accepted for s in r.batch]
                if len(signals) >= count:
                    return signals
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} signals within {timeout}s, got {len(signals)}: "
                        f"{[s.get('type') for s in signals]}"
                    )
                self._lock.wait(remaining)

    def wait_for_type(
        self, signal_type: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Block until at least ``count`` accepted signals of ``signal_type`` arrived (returns
        all of them, possibly fewer after the timeout: the caller asserts on them)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    s
                    for r in self.requests
                    if r.reply.accepted
                    for s in r.batch
                    if s.get("type") == signal_type
                ]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._lock.wait(remaining)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} requests within {timeout}s, got {len(self.requests)}"
                    )
                self._lock.wait(remaining)
            return list(self.requests)

    # -- the handler -------------------------------------------------------------------------

    @staticmethod
    def _handler_class(server: IngestServer) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Status line and body are separate writes: with Nagle's algorithm the second
            # waits for the client's delayed ACK, 40 ms a batch.
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    reply = server._script.popleft() if server._script else server.default
                    server.requests.append(Request(self.path, dict(self.headers), raw, reply))
                    server._lock.notify_all()
                if reply.delay:
                    server._stopping.wait(reply.delay)
                while reply.until is not None and not reply.until.wait(0.05):
                    if server._stopping.is_set():
                        break
                if reply.blackhole:
                    server._stopping.wait()
                    self.close_connection = True
                    return
                if reply.reset_mid_response:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
                    self.wfile.flush()
                if reply.reset or reply.reset_mid_response:
                    # SO_LINGER with a zero timeout turns close() into a TCP RST.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                body = reply.body.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def free_port() -> int:
    """A loopback port nobody listens on (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
