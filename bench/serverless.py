"""What the end of a serverless invocation costs: delivering what the handler queued.

    ./dev bench serverless [--quick]

For 1, 10 and 100 signals queued by an invocation, the median time of the delivery that
``td_web.serverless.handler`` does before the handler returns (``td_web.serverless``'s
thread-less client), against the baseline of the same flush by the ordinary background client
(``td_web.TelemetryDeck.flush``), both measured in this run against the project's collector
(``td-web collect``, a separate process on loopback).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from _variants import APP_ID

import td_web
from td_web._transport import http_library
from td_web.serverless import TelemetryDeck as FunctionTelemetryDeck

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_collector(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "td_web.cli", "collect", "--port", str(port)]
    command += ["--db", os.path.join(workdir, "collector.db")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the collector did not start")


def median_flush_ms(client: td_web.TelemetryDeck, signals: int, invocations: int) -> float:
    times = []
    for _ in range(invocations):
        for number in range(signals):
            client.signal("Bench.work", {"Bench.number": number})
        start = time.perf_counter()
        if not client.flush(30):
            raise SystemExit("a flush did not deliver everything")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer invocations")
    invocations = 10 if parser.parse_args().quick else 50
    with tempfile.TemporaryDirectory() as workdir:
        collector, url = start_collector(workdir)
        options = {"app_id": APP_ID, "salt": "bench", "endpoint": url}
        function = FunctionTelemetryDeck(**options)
        background = td_web.TelemetryDeck(**options)
        try:
            print(f"end-of-invocation delivery, median of {invocations} invocations")
            print(f"{'signals':>8} {'serverless ms':>14} {'background ms':>14} {'ratio':>6}")
            for signals in (1, 10, 100):
                # Interleaved, so that load from elsewhere hits both alike.
                ours = median_flush_ms(function, signals, invocations)
                base = median_flush_ms(background, signals, invocations)
                print(f"{signals:>8} {ours:>14.2f} {base:>14.2f} {ours / base:>5.2f}x")
        finally:
            function.close(5)
            background.close(5)
            collector.terminate()
            collector.wait(10)


if __name__ == "__main__":
    main()
