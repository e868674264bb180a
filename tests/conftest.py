from __future__ import annotations

import contextlib
import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ingest_server import IngestServer

from td_web import TelemetryDeck
from td_web._log import throttled
from td_web._web import RequestView, Telemetry, WebTelemetry

APP_ID = "B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE"
_OWN_PREFIX = "TELEMETRYDECK_"


def environment_without_telemetrydeck() -> dict[str, str]:
    """``os.environ`` for a subprocess, without any ``TELEMETRYDECK_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIX)}


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` (dedented) in a fresh interpreter, its output captured as text, in the
    environment without ``TELEMETRYDECK_*`` variables plus ``env``."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**environment_without_telemetrydeck(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Until ``condition()`` holds (the sender's thread does the work); fails after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_telemetrydeck_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own TELEMETRYDECK_* variables must not leak into any test."""
    for name in list(os.environ):
        if name.startswith(_OWN_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    """A real ingest server on loopback that records batches and injects scripted faults."""
    with IngestServer() as server:
        yield server


@pytest.fixture(scope="module")
def module_ingest() -> Iterator[IngestServer]:
    """One ingest server for a whole module (hostile-input tests share one client)."""
    with IngestServer() as server:
        yield server


@pytest.fixture(scope="module")
def module_client(module_ingest: IngestServer) -> Iterator[TelemetryDeck]:
    """One client for a whole module's cases (building one costs more than a case)."""
    client = TelemetryDeck(
        app_id=APP_ID, salt="module-client", endpoint=module_ingest.url, flush_interval=3600
    )
    yield client
    client.close(1)


@pytest.fixture(scope="session", autouse=True)
def _no_client_outlives_the_session() -> Iterator[None]:
    """Clients a test left open would each wait for their shutdown timeout at exit."""
    yield
    from td_web._sender import _live_senders

    for sender in list(_live_senders):
        sender.close(0)


@pytest.fixture(autouse=True)
def _no_sender_left_running() -> Iterator[None]:
    """A test fails when a client it built is left open with its sender's thread running: the
    thread would outlive the test, retrying into whichever later test captures warnings.
    Clients of longer-lived fixtures (built before the test) are not the test's to close. A
    client the test dropped in a reference cycle is ended by one collection (run only when
    something is left, so the verdict does not hang on when the collector happened to run);
    what is still open after it is held by something, and fails the test."""
    from td_web._sender import Sender, _live_senders

    known = weakref.WeakSet(_live_senders)
    yield
    for thread in threading.enumerate():
        if thread.name == "td_web-retire":  # a replaced Django telemetry closing its client
            thread.join(10)

    def still_running() -> list[Sender]:
        return [
            sender
            for sender in list(_live_senders)
            if isinstance(sender, Sender)
            and sender not in known
            and not sender.closed  # (a garbage-collected client's sender is closed, and ending)
            and sender._thread is not None
            and sender._thread.is_alive()
        ]

    left = still_running()
    if left:
        del left[:]
        gc.collect()
        left = still_running()
    for sender in left:
        sender.close(0)
    if left:
        pytest.fail(
            f"the test left {len(left)} client(s) open with a running sender thread "
            f"({', '.join(sender._url for sender in left)}): close each client it builds",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _td_web_logs_visible(caplog: pytest.LogCaptureFixture) -> None:
    """Every test sees td_web's log lines, including the first of each throttled warning."""
    caplog.set_level(logging.INFO, logger="td_web")
    throttled.reset()


@contextlib.contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects the block left to the cyclic garbage collector (reachable only through
    reference cycles) instead of freeing them at once; filled when the block ends."""
    garbage: list[object] = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield garbage
        gc.collect()
        garbage.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


@pytest.fixture
def begun_forwarding(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, ...]]:
    """The forwarding headers (``Forwarded``, ``X-Forwarded-For``, ``-Proto``) of each request
    view the core begins with, in order: what an adapter read of them."""
    begun: list[tuple[str | None, ...]] = []
    begin = WebTelemetry.begin

    def spy(web: WebTelemetry, view: RequestView, *args: Any) -> Telemetry:
        begun.append((view.forwarded, view.forwarded_for, view.forwarded_proto))
        return begin(web, view, *args)

    monkeypatch.setattr(WebTelemetry, "begin", spy)
    return begun


#: The two clients behind one proxy of ``assert_forwarded_address_counts_only_when_trusted``.
FORWARDED_CLIENTS = ("203.0.113.9", "198.51.100.4")


def assert_forwarded_address_counts_only_when_trusted(
    begun: list[tuple[str | None, ...]], signals: Any
) -> None:
    """Four page views, each from one of ``FORWARDED_CLIENTS`` in turn: two with
    ``trusted_proxies`` (cookieless), then two without it (``begun_forwarding``)."""
    trusted_views, direct_views = begun[:2], begun[2:]
    assert [view[1] for view in trusted_views] == list(FORWARDED_CLIENTS)
    assert direct_views == [(None, None, None)] * 2
    sessions = [signal["sessionID"] for signal in signals.of_type("pageView")]
    assert sessions[0] != sessions[1]  # two forwarded clients, two sessions
    assert sessions[2] == sessions[3]  # the proxy's own address for both
