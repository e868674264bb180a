"""A user's test suite with td_web installed: many apps built in one process.

    ./dev bench many_apps [--apps 1000] [--frameworks starlette,flask] [--rounds 2]

A test suite builds an app per test (an app factory, a fixture), sends it a few requests
through the framework's test client and drops it. This builds ``--apps`` such apps in one
process, each with and without td_web, and times:

* **per app**: building it and three requests through its test client (Starlette's
  ``TestClient`` used as a context manager, so the lifespan runs too; Flask's ``test_client``);
* **plain request after**: afterwards, a request to an unrelated app without td_web, while
  whatever td_web left behind (sender threads, clients) is still alive;
* **threads left**: threads alive after the last app was dropped;
* **exit**: from the suite's end to the end of its process (atexit flushes included); a
  process still alive after ``--exit-timeout`` seconds is killed and reported as such.

Each (framework, variant) suite runs in a process of its own, the variants taking turns,
``--rounds`` times; figures are medians over the rounds. td_web sends to a local sink (a
separate process), so nothing leaves the loopback address. The ratios (td_web / bare) are the
result: 1.0x means a test suite does not notice td_web.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import _sink
from _variants import APP_ID

FRAMEWORKS = ("starlette", "flask")
VARIANTS = ("bare", "td_web")
REQUESTS_PER_APP = 3
PLAIN_REQUESTS = 200

# -- the suite, run in a child process ---------------------------------------------------------


def _test_client() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette 1.x recommends httpx2 for its test client
        from starlette.testclient import TestClient
    return TestClient


def _starlette_factory(telemetry: bool) -> Callable[[], Any]:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from td_web.asgi import TelemetryDeckMiddleware

    async def home(request: Any) -> HTMLResponse:
        return HTMLResponse("<p>hello</p>")

    def build() -> Any:
        app = Starlette(routes=[Route("/", home), Route("/items/{n:int}", home)])
        if telemetry:
            app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID, handle_sigterm=False)
        return app

    return build


def _flask_factory(telemetry: bool) -> Callable[[], Any]:
    from flask import Flask

    from td_web.flask import TelemetryDeck

    def build() -> Any:
        app = Flask(__name__)
        app.config.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_HANDLE_SIGTERM=False)
        app.add_url_rule("/", "home", lambda: "<p>hello</p>")
        app.add_url_rule("/items/<int:n>", "item", lambda n: "<p>hello</p>")
        if telemetry:
            TelemetryDeck(app)
        return app

    return build


def _one_test(framework: str, telemetry: bool) -> Callable[[], None]:
    """One test of a user's suite: build an app, a few requests through its test client."""
    if framework == "starlette":
        build, test_client = _starlette_factory(telemetry), _test_client()

        def one_starlette_test() -> None:
            # As a context manager, so the app's lifespan (td_web's flush in it) runs too.
            with test_client(build()) as client:
                for n in range(REQUESTS_PER_APP):
                    assert client.get(f"/items/{n}").status_code == 200

        return one_starlette_test
    build = _flask_factory(telemetry)

    def one_flask_test() -> None:
        client = build().test_client()
        for n in range(REQUESTS_PER_APP):
            assert client.get(f"/items/{n}").status_code == 200

    return one_flask_test


def _plain_request_seconds(framework: str) -> float:
    """A request to one app without td_web: what an unrelated test pays afterwards."""
    if framework == "starlette":
        client = _test_client()(_starlette_factory(False)())
    else:
        client = _flask_factory(False)().test_client()
    client.get("/")  # first-call costs out of the way
    started = time.perf_counter()
    for n in range(PLAIN_REQUESTS):
        assert client.get(f"/items/{n}").status_code == 200
    return (time.perf_counter() - started) / PLAIN_REQUESTS


def child(framework: str, variant: str, apps: int) -> None:
    suite = _one_test(framework, variant == "td_web")
    suite()  # warm-up: imports, first-call caches
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(apps):
        suite()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    gc.collect()
    result = {
        "per_app": wall / apps,
        "cpu_per_app": cpu / apps,
        "plain_request": _plain_request_seconds(framework),
        "threads": threading.active_count(),
    }
    print(json.dumps(result), flush=True)


# -- the parent: processes taking turns, the report --------------------------------------------


def _run(
    framework: str, variant: str, apps: int, sink: str, exit_timeout: float
) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRYDECK_")}
    environment["TELEMETRYDECK_ENDPOINT"] = sink + "/td_web"
    command = [sys.executable, __file__, "--child", framework, variant, str(apps)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    assert process.stdout is not None
    line = process.stdout.readline()
    finished = time.perf_counter()
    try:
        process.wait(exit_timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # an exit that long is the finding; nan marks it in the report
        process.wait()
        return {**json.loads(line), "exit": math.nan}
    exit_seconds = time.perf_counter() - finished
    if process.returncode != 0 or not line:
        raise SystemExit(f"{framework}/{variant} failed (exit code {process.returncode})")
    return {**json.loads(line), "exit": exit_seconds}


def _report(
    framework: str, figures: dict[str, list[dict[str, float]]], exit_timeout: float
) -> None:
    killed = f"> {exit_timeout:g} s"

    def median(variant: str, key: str) -> float:
        values = [run[key] for run in figures[variant]]
        return math.nan if any(math.isnan(v) for v in values) else statistics.median(values)

    rows = [
        ("per app (build + 3 requests)", "per_app", 1e3, "ms"),
        ("  CPU per app", "cpu_per_app", 1e3, "ms"),
        ("plain app's request after", "plain_request", 1e3, "ms"),
        ("threads left", "threads", 1, ""),
        ("process exit", "exit", 1, "s"),
    ]
    print(f"\n  {framework:<30} {'bare':>12} {'td_web':>12} {'ratio':>8}")
    for label, key, scale, unit in rows:
        bare, td = median("bare", key) * scale, median("td_web", key) * scale
        ratio = "-" if not bare or math.isnan(bare + td) else f"{td / bare:7.2f}x"
        cells = [
            f"{value:>9.3f}{unit:<3}" if not math.isnan(value) else f"{killed:>12}"
            for value in (bare, td)
        ]
        print(f"  {label:<30} {cells[0]} {cells[1]} {ratio:>8}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1000, help="apps per suite (1000)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=2, help="runs of each suite (2)")
    parser.add_argument(
        "--exit-timeout",
        type=float,
        default=60.0,
        help="seconds a suite's process may take to exit before it is killed (60)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        framework, variant, apps = args.child
        child(framework, variant, int(apps))
        return
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        parser.error(f"unknown frameworks {sorted(unknown)}; one of {', '.join(FRAMEWORKS)}")
    print(f"{args.apps} apps per suite, {args.rounds} rounds, Python {sys.version.split()[0]}")
    with _sink.serve("sink") as sink:
        for framework in frameworks:
            figures: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
            for _ in range(args.rounds):
                for variant in VARIANTS:
                    run = _run(framework, variant, args.apps, sink, args.exit_timeout)
                    figures[variant].append(run)
            _report(framework, figures, args.exit_timeout)


if __name__ == "__main__":
    main()
