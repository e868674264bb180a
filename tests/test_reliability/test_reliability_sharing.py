"""Invisible to the host (issue #20): one sender per configuration however many apps are
built, no TLS set-up for plain http://, idle threads that end with their client, and an exit
where every client flushes in parallel within one budget."""

from __future__ import annotations

import gc
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any

import pytest
from conftest import APP_ID, environment_without_telemetrydeck
from flask import Flask
from ingest_server import IngestServer, Reply

from td_web import TelemetryDeck
from td_web.flask import TelemetryDeck as FlaskTelemetryDeck

FAST = {"flush_interval": 0.05, "initial_backoff": 0.01, "max_backoff": 0.05}


def sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "td_web-sender" and t.is_alive()]


def test_a_thousand_apps_with_one_configuration_share_one_sender(ingest: IngestServer) -> None:
    before = len(sender_threads())
    apps = []
    for _ in range(1_000):  # a test suite building an app per test
        app = Flask(__name__)
        app.config["TELEMETRYDECK_APP_ID"] = APP_ID
        app.config["TELEMETRYDECK_HANDLE_SIGTERM"] = False
        FlaskTelemetryDeck(app, endpoint=ingest.url, **FAST)
        app.add_url_rule("/", "index", lambda: "ok")
        assert app.test_client().get("/").status_code == 200
        apps.append(app)
    clients = {id(app.extensions["telemetrydeck"].client._sender) for app in apps}
    assert len(clients) == 1
    assert len(sender_threads()) - before <= 1
    client = apps[0].extensions["telemetrydeck"].client
    assert client.flush(10)
    assert len([s for s in ingest.accepted_signals if s["type"] == "pageView"]) == 1_000
    # Closing one app's client leaves the others working; the last one stops the thread.
    assert client.close(5)
    assert apps[1].extensions["telemetrydeck"].client.signal("Still.open") is True
    for app in apps[1:]:
        assert app.extensions["telemetrydeck"].client.close(5)
    assert "Still.open" in [s["type"] for s in ingest.accepted_signals]
    assert len(sender_threads()) == before


def test_different_configurations_do_not_share(ingest: IngestServer) -> None:
    first = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, namespace="com.one", **FAST)
    second = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, namespace="com.two", **FAST)
    third = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, namespace="com.one", **FAST)
    try:
        assert first._sender is third._sender
        assert first._sender is not second._sender
    finally:
        for client in (first, second, third):
            client.close(1)


def test_no_certificates_are_loaded_for_a_plain_http_endpoint(
    ingest: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[Any] = []
    real_load = ssl.SSLContext.load_verify_locations

    def spy(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(args or kwargs)
        real_load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", spy)
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, **FAST)
    assert td._sender is not None
    assert not td._sender._transport.built  # nothing is built before the first batch
    td.signal("Plain.http")
    assert td.flush(5)
    assert td._sender._transport.built
    td.close(1)
    assert [s["type"] for s in ingest.accepted_signals] == ["Plain.http"]
    assert loaded == []
    # The spy works: an https client does load the CA bundle.
    https = TelemetryDeck(app_id=APP_ID, endpoint="https://ingest.invalid", **FAST)
    assert https._sender is not None
    https._sender._transport._client()
    assert loaded != []
    https.close(0)


def test_the_sender_thread_ends_when_its_client_is_garbage_collected(
    ingest: IngestServer,
) -> None:
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, flush_interval=3600)
    td.signal("Queued.then.forgotten")  # not yet sent: the interval is an hour
    assert td._sender is not None
    thread = td._sender._thread
    assert thread is not None and thread.is_alive()
    del td
    gc.collect()
    # What the forgotten client queued is still delivered, then its thread ends.
    assert [s["type"] for s in ingest.wait_for_signals(1)] == ["Queued.then.forgotten"]
    thread.join(10)
    assert not thread.is_alive()


def test_an_app_dropped_after_its_requests_lets_its_client_and_thread_go(
    ingest: IngestServer,
) -> None:
    """An app that served requests and was then dropped (an app factory, a test per app):
    nothing the sender keeps for the next requests (what a browser's usual requests share)
    holds the app's telemetry, so its client is collected and its thread delivers and ends."""
    app = Flask(__name__)
    app.config["TELEMETRYDECK_APP_ID"] = APP_ID
    app.config["TELEMETRYDECK_HANDLE_SIGTERM"] = False
    FlaskTelemetryDeck(app, endpoint=ingest.url, **FAST)
    app.add_url_rule("/", "index", lambda: "<p>ok</p>")
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko Firefox/128.0"}
    assert app.test_client().get("/", headers=browser).status_code == 200
    client = app.extensions["telemetrydeck"].client
    sender = client._sender
    assert client.flush(10)  # the sender has written the page view (and kept its parts)
    assert "pageView" in [s["type"] for s in ingest.accepted_signals]
    collected = weakref.ref(client)
    thread = sender._thread
    assert thread is not None and thread.is_alive()
    del app, client
    gc.collect()
    assert collected() is None, "the app's client outlived the app"
    thread.join(10)
    assert not thread.is_alive()


def test_a_client_collected_while_the_registry_is_locked_does_not_deadlock(
    ingest: IngestServer,
) -> None:
    """Garbage collection can run a client's finalizer anywhere, also inside ``_acquire`` on
    the thread that holds the registry's lock (found as a hang in the test suite): the
    finalizer must never wait for that lock, and the share is released once it is free."""
    from td_web import _client

    collected = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, **FAST)
    assert collected.signal("Before.collection")
    sender = collected._sender
    assert sender is not None
    finished = threading.Event()

    def collect_under_the_lock() -> None:
        with _client._shared_lock:  # as inside _acquire when a collection starts
            collected._finalizer()
        finished.set()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    worker.start()
    assert finished.wait(10), "the finalizer waited for the lock its own thread holds"
    assert not sender.closed  # released later, not under the lock
    # The next use of the registry releases it: the last user gone, the sender delivers
    # what it holds and ends.
    TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, flush_interval=9).close(1)
    assert sender.closed
    assert [s["type"] for s in ingest.wait_for_signals(1)] == ["Before.collection"]


def test_an_idle_sender_thread_sleeps_without_a_timer(ingest: IngestServer) -> None:
    td = TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, **FAST)
    td.signal("Once")
    assert td.flush(5)
    sender = td._sender
    assert sender is not None
    assert sender._wait_time(time.monotonic()) is None  # no wake-up until a record arrives
    td.signal("Again")
    assert td.flush(5)
    assert [s["type"] for s in ingest.accepted_signals] == ["Once", "Again"]
    td.close(1)


def test_at_exit_many_clients_flush_in_parallel_within_one_budget(ingest: IngestServer) -> None:
    clients, delay, budget = 8, 2.0, 10.0
    ingest.default = Reply(delay=delay)
    code = textwrap.dedent(
        f"""
        from td_web import TelemetryDeck
        clients = [
            TelemetryDeck(namespace=f"com.app{{i}}", flush_interval=3600,
                          shutdown_timeout={budget})
            for i in range({clients})
        ]
        for i, td in enumerate(clients):
            td.signal("At.exit", {{"i": i}})
        # no close: the exit flushes every client
        """
    )
    env = environment_without_telemetrydeck()
    env.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_ENDPOINT=ingest.url)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals) == list(range(clients))
    # One after another this takes clients x delay = 16 s; in parallel about one delay.
    assert elapsed < clients * delay * 0.75, f"exit took {elapsed:.1f}s"
