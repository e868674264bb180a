"""The collector's HTTP server and its in-process handle, :class:`Collector`.

Standard library only: a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (so a
sender reuses one connection for its whole run), one thread per connection, and the SQLite
store behind it. Routes:

* ``POST /v2/`` and ``POST /v2/namespace/{ns}/``: ingest (:mod:`.ingest`);
* ``GET /``: the live page, and ``GET /static/{name}`` for its script and style sheet;
* ``GET /api/...``: the JSON API (:mod:`.api`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from . import api
from .ingest import DEFAULT_MAX_BODY_BYTES, IngestEndpoint, parse_ingest_path
from .store import SignalFilter, SignalStore, StoredSignal, StoredViolation

logger = logging.getLogger("td_web.collector")

DEFAULT_DB_PATH = "td_web_collector.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787

# After refusing a body unread: how long and how much of it to drain before closing.
_LINGER_SECONDS = 2.0
_LINGER_MAX_BYTES = 64 * 1024 * 1024

_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page needs nothing from elsewhere; saying so keeps a stored payload from ever running.
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _load_static_files() -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) for every file shipped in ``static/``."""
    files: dict[str, tuple[bytes, str]] = {}
    folder = resources.files("td_web.collector").joinpath("static")
    for entry in folder.iterdir():
        suffix = os.path.splitext(entry.name)[1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


class _Server(ThreadingHTTPServer):
    """Serves until told to stop, at once (no polling interval to wait out), and tracks open
    connections so that stopping can close idle keep-alive ones (otherwise their threads
    would outlive the database they write to)."""

    daemon_threads = True
    request_queue_size = 128
    # handle_request() gives up after this long if a ready connection vanished before accept.
    timeout = 0.5

    def __init__(self, address: tuple[str, int], ingest: IngestEndpoint) -> None:
        self.ingest = ingest
        self.store = ingest.store
        self.static_files = _load_static_files()
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        self._stop_requested = False
        self._stopped = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(address, _Handler)

    def serve_until_stopped(self) -> None:
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while not self._stop_requested:
                    for key, _ in selector.select():
                        if key.fileobj is self.socket and not self._stop_requested:
                            self.handle_request()
        finally:
            self._stopped.set()

    def request_stop(self, timeout: float) -> None:
        """Make serve_until_stopped() return, and wait up to ``timeout`` for it."""
        self._stop_requested = True
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered here, on the serving thread, so that once serving has stopped every
        # accepted connection is known to close_connections(), even if its thread has not
        # started yet.
        with self._connections_changed:
            self._connections.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nobody else will forget the connection
            with self._connections_changed:
                self._connections.discard(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_changed:
                self._connections.discard(request)
                self._connections_changed.notify_all()

    def close_connections(self, timeout: float) -> bool:
        """Shut every open connection down and wait for their threads; True when all ended."""
        deadline = time.monotonic() + timeout
        with self._connections_changed:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the other side
                    connection.shutdown(socket.SHUT_RDWR)
            while self._connections:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._connections_changed.wait(remaining)
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "td_web-collector"
    # An idle keep-alive connection is closed after this long, freeing its thread.
    timeout = 120
    # Without it, the small answer written after the headers waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            answer = self.server.ingest.handle(path, self.headers.get, self.rfile.read)
        except Exception:
            logger.exception("td_web.collector: storing a request failed")
            self._send_json(500, {"error": "the collector failed to store the request"})
            return
        if answer.close_connection:
            self.close_connection = True
        self._send_json(answer.status, answer.body)
        if answer.close_connection:
            self._linger()

    def _linger(self) -> None:
        """Half-close, then read and discard what the client is still sending.

        Closing with the unread body in the socket would make the kernel reset the
        connection, which can destroy the answer before the client reads it; a client
        that is still sending a too-large body would then see an error instead of the 413.
        """
        self.wfile.flush()
        deadline = time.monotonic() + _LINGER_SECONDS
        discarded = 0
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while discarded < _LINGER_MAX_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                discarded += len(chunk)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/" or path == "/index.html":
            self._send_static("index.html")
            return
        if path.startswith("/static/"):
            self._send_static(path[len("/static/") :])
            return
        if path.startswith("/api/"):
            try:
                result = api.answer(self.server.store, path, parts.query)
            except Exception:
                logger.exception("td_web.collector: answering %s failed", path)
                self._send_json(500, {"error": "the collector failed to answer"})
                return
            if result is not None:
                self._send_json(*result)
                return
        if parse_ingest_path(path) is not None:
            self._send_json(
                405, {"error": "ingest routes take POST only"}, extra_headers={"Allow": "POST"}
            )
            return
        self._send_json(404, {"error": f"nothing at {path!r}"})

    def _send_static(self, name: str) -> None:
        found = self.server.static_files.get(name)
        if found is None:
            self._send_json(404, {"error": f"no static file {name!r}"})
            return
        content, content_type = found
        self._send(200, content, content_type)

    def _send_json(
        self, status: int, body: dict[str, Any], extra_headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, data, "application/json; charset=utf-8", extra_headers)

    def _send(
        self,
        status: int,
        content: bytes,
        content_type: str,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", _CONTENT_SECURITY_POLICY)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        # Debug level: one line per request would drown the terminal at benchmark rates.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", self.address_string(), format % args)


class Collector:
    """A local ingest server: validates, stores and shows what an SDK sends.

    ``with Collector("signals.db") as collector:`` serves on a background thread (port 0
    picks a free port); point a client at ``collector.url``. ``serve_forever()`` serves on
    the calling thread instead (the ``td-web collect`` command).
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] = DEFAULT_DB_PATH,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.store = SignalStore(db_path)
        try:
            self._server = _Server((host, port), IngestEndpoint(self.store, max_body_bytes))
        except BaseException:
            self.store.close()
            raise
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._serving = False
        self._released = False

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL: what a client takes as its ``endpoint``."""
        host = self.host
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def ingest_url(self) -> str:
        return f"{self.url}/v2/"

    # -- running -----------------------------------------------------------------------------

    def start(self) -> Collector:
        """Serve on a background thread; returns self."""
        with self._state_lock:
            if self._released:
                raise RuntimeError("this collector was stopped; create a new one")
            if self._serving:
                return self
            self._serving = True
        self._thread = threading.Thread(target=self._serve, name="td_web-collector", daemon=True)
        self._thread.start()
        logger.info("td_web.collector: listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until KeyboardInterrupt or ``stop()`` from another
        thread, then release the port and the database."""
        with self._state_lock:
            if self._released or self._serving:
                raise RuntimeError("this collector is already serving or was stopped")
            self._serving = True
        try:
            self._serve()
        except KeyboardInterrupt:
            pass
        finally:
            self._release()

    def _serve(self) -> None:
        self._server.serve_until_stopped()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open connections and the database. Safe to call twice."""
        with self._state_lock:
            serving = self._serving
        if serving:
            self._server.request_stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        self._release(timeout)

    def _release(self, timeout: float = 5.0) -> None:
        with self._state_lock:
            if self._released:
                return
            self._released = True
        self._server.server_close()
        if not self._server.close_connections(timeout):
            logger.warning("td_web.collector: a connection was still busy when stopping")
        self.store.close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what arrived ------------------------------------------------------------------------

    def signals(
        self,
        type: str | None = None,
        *,
        session: str | None = None,
        test_mode: bool | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[StoredSignal]:
        """Accepted signals in arrival order, optionally filtered."""
        return self.store.signals(
            SignalFilter(type=type, session=session, test_mode=test_mode),
            since_id=since_id,
            limit=limit,
        )

    def violations(
        self, rule: str | None = None, *, since_id: int = 0, limit: int | None = None
    ) -> list[StoredViolation]:
        """Broken rules in arrival order, optionally only one rule."""
        return self.store.violations(rule=rule, since_id=since_id, limit=limit)

    def stats(self, minutes: int = 60) -> dict[str, Any]:
        """What ``/api/stats`` answers: counts and chart data."""
        return self.store.stats(minutes=minutes)

    def wait_for_signals(
        self, count: int, timeout: float = 5.0, type: str | None = None
    ) -> list[StoredSignal]:
        """Poll until at least ``count`` signals (of ``type``) arrived; raises TimeoutError."""
        return _poll(
            lambda: self.signals(type),
            lambda found: len(found) >= count,
            timeout,
            f"{count} signal(s){f' of type {type!r}' if type else ''}",
        )

    def __repr__(self) -> str:
        return f"<Collector {self.url} db={str(self.store.path)!r}>"


def _poll(
    fetch: Callable[[], list[Any]],
    done: Callable[[list[Any]], bool],
    timeout: float,
    wanted: str,
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if done(found):
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout}s for {wanted}; have {len(found)}")
        time.sleep(0.02)
