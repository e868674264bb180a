"""Local stand-ins for remote ingest servers, each in a process of its own.

* ``sink``: answers every request ``200`` at once after reading its body (the destination of
  every SDK under test, so that nothing leaves the loopback address and the server's own CPU
  is not charged to the process being measured). It counts requests by the first segment of
  their path (each SDK is given its own, ``/posthog``, ``/otel``, ...); ``GET /__counts``
  returns those counts as JSON, so a report can show that each SDK really sent something;
  ``GET /__events`` the events inside those uploads, where the sink can read them (a JSON
  array: td_web's signals; a JSON ``batch``: posthog's events; OTLP protobuf: spans), so a
  report can compare what an SDK queued with what arrived;
  ``GET /__checks`` what it found wrong in td_web's signals (below);
* ``blackhole``: accepts connections and reads them, and never answers (an ingest that hangs).

    python bench/_sink.py sink|blackhole PORT [DELAY_MS]

``DELAY_MS`` makes the sink answer each upload that many milliseconds after reading it (a
distant ingest: the round trip to a hosted service), without holding up the other connections
meanwhile: asyncio, so a hundred uploads waiting cost the machine nothing but their sockets.

The sink checks every td_web signal it counts: the wire contract's fields present and of their
types, and, where the payload carries ``Bench.seq`` (a number the benchmark gives each signal),
that no number arrives twice; ``GET /__checks`` returns ``{"signals", "malformed", "numbered",
"duplicates"}``, so a run can say that what arrived was whole and arrived once. It parses with
orjson when installed (the ``fast`` extra), to stay cheap beside the process being measured.

The parent starts one with :func:`serve` and gets its URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

_JSON_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_EMPTY_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_counts: dict[str, int] = {}
_events: dict[str, int] = {}
_checks = {"signals": 0, "malformed": 0, "numbered": 0, "duplicates": 0}
_numbers_seen: set[int] = set()
#: Seconds each upload waits before its answer (``DELAY_MS``).
_delay = 0.0

try:
    from orjson import loads as _loads
except ImportError:
    _loads = json.loads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";", 1)[0], 16)
            chunks.append((await reader.readexactly(size + 2))[:size])  # the chunk, its CRLF
            if size == 0:
                return b"".join(chunks)
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""


def _is_signal(item: object) -> bool:
    """Whether ``item`` is a signal as the Ingest API v2 takes it (the fields td_web sends)."""
    return (
        type(item) is dict
        and type(item.get("appID")) is str
        and type(item.get("clientUser")) is str
        and type(item.get("type")) is str
        and type(item.get("sessionID")) is str
        and type(item.get("isTestMode")) is bool
        and type(item.get("payload")) is dict
    )


def _check_signals(signals: list[object]) -> None:
    _checks["signals"] += len(signals)
    for item in signals:
        if not _is_signal(item):
            _checks["malformed"] += 1
            continue
        number = item["payload"].get("Bench.seq")  # type: ignore[index]
        if number is not None:
            _checks["numbered"] += 1
            number = int(number)
            if number in _numbers_seen:
                _checks["duplicates"] += 1
            _numbers_seen.add(number)


def _count_events(body: bytes, headers: dict[str, str]) -> int | None:
    """The events in one upload, or None when this sink cannot read the format."""
    try:
        if headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        if "protobuf" in headers.get("content-type", ""):
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest,
            )

            request = ExportTraceServiceRequest.FromString(body)
            return sum(
                len(scope.spans) for spans in request.resource_spans for scope in spans.scope_spans
            )
        data = _loads(body)
    except Exception:
        return None
    if isinstance(data, list):
        _check_signals(data)
        return len(data)
    if isinstance(data, dict) and isinstance(data.get("batch"), list):
        return len(data["batch"])
    return None


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await _read_body(reader, headers)
            parts = request_line.split(b" ")
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            if path in _REPORTS:
                body = json.dumps(_REPORTS[path]).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                segment = path.split("/")[1].split("?")[0] if path.count("/") else ""
                _counts[segment] = _counts.get(segment, 0) + 1
                events = _count_events(body, headers)
                if events is not None:
                    _events[segment] = _events.get(segment, 0) + events
                is_json = "json" in headers.get("content-type", "")
                if _delay:
                    await asyncio.sleep(_delay)
                writer.write(_JSON_ANSWER if is_json else _EMPTY_ANSWER)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read everything so the client's sends never block on a full buffer, and never answer.
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    writer.close()


_REPORTS: dict[str, object] = {"/__counts": _counts, "/__events": _events, "/__checks": _checks}


async def _main(kind: str, port: int) -> None:
    handler = _answer if kind == "sink" else _swallow
    server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def counts(url: str) -> dict[str, int]:
    """Requests a sink has answered so far, by the first segment of their path."""
    from td_web._transport import http_library  # only the parent needs it

    answer: dict[str, int] = http_library().get(f"{url}/__counts", timeout=10).json()
    return answer


def checks(url: str) -> dict[str, int]:
    """What the sink found in td_web's signals so far (see the module's docstring)."""
    from td_web._transport import http_library

    answer: dict[str, int] = http_library().get(f"{url}/__checks", timeout=10).json()
    return answer


def events(url: str) -> dict[str, int]:
    """Events inside the uploads a sink has answered so far (see ``_count_events``)."""
    from td_web._transport import http_library

    answer: dict[str, int] = http_library().get(f"{url}/__events", timeout=10).json()
    return answer


@contextlib.contextmanager
def serve(kind: str = "sink", delay_ms: float = 0) -> Iterator[str]:
    """Run a ``sink`` (answering ``delay_ms`` after each upload) or ``blackhole`` in a child
    process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, kind, str(port), str(delay_ms)])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    _delay = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(sys.argv[1], int(sys.argv[2])))
