"""A small closed-loop HTTP/1.1 load generator: keep-alive connections on loopback, each sending
the next request as soon as the previous answer is read. Bounded by a request count and a time.

    python bench/_load.py http://127.0.0.1:PORT/items/42 --connections 8 --requests 5000

Prints one JSON line: requests completed, errors, seconds, requests per second, and latency
percentiles in milliseconds. Written on asyncio streams (no HTTP library) so that the load
generator costs as little CPU as possible on a small machine shared with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import _loopback
from _drive import HEADERS


class Budget:
    def __init__(self, requests: int, seconds: float) -> None:
        self.left = requests
        self.deadline = time.monotonic() + seconds

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


def request_bytes(host: str, path: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name.title()}: {value}" for name, value in HEADERS if name != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _connection(
    host: str, port: int, payload: bytes, budget: Budget, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget.take():
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            at = lower.find(b"content-length:")
            length = int(lower[at + 15 : lower.find(b"\r\n", at)]) if at != -1 else 0
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            if b"connection: close" in lower:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run(url: str, connections: int, requests: int, seconds: float) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = request_bytes(parts.netloc, parts.path or "/")
    budget = Budget(requests, seconds)
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, payload, budget, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if not _loopback.is_loopback(urlsplit(args.url).hostname):
        parser.error("the load generator only targets loopback addresses")
    result = asyncio.run(run(args.url, args.connections, args.requests, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
