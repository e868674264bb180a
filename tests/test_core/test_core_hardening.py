"""Hardening of the core (issue 13), through the real client and sender against the real
ingest server: payload key limits and reserved-key renaming, bounded hash caches, the record
size estimate, and the log throttler under a SIGTERM."""

from __future__ import annotations

import logging
import signal

import pytest
from conftest import APP_ID, run_python
from ingest_server import IngestServer, Reply

from td_web import TelemetryDeck
from td_web._sanitize import MAX_KEYS
from td_web._signal import RECORD_OVERHEAD, BuiltSignal, CustomSignal


def _client(ingest: IngestServer, **options: object) -> TelemetryDeck:
    return TelemetryDeck(
        app_id=APP_ID, salt="s", endpoint=ingest.url, flush_interval=3600, **options
    )


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_payload_of_200_keys_goes_out_with_at_most_128(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(ingest, app_version="1.0", default_payload={"Team": "a"}) as client:
        client.signal("Many.keys", {f"k{i}": i for i in range(200)}, float_value=1.0)
        assert client.flush(30)
    [sent] = ingest.accepted_signals
    payload = sent["payload"]
    assert len(payload) == MAX_KEYS  # main: 128 of the caller's plus td_web's own, 134
    assert payload["TelemetryDeck.SDK.name"] == "td_web"
    assert payload["floatValue"] == 1.0
    assert any("more than 128 keys" in message for message in _warnings(caplog))


def test_a_renamed_reserved_key_keeps_both_values_and_says_so(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(ingest) as client:
        client.signal("Reserved.keys", {"count": 1, "_count": 2})
        client.signal("Nested.collision", {"a.b": 1, "a": {"b": 2}})
        assert client.flush(30)
    reserved, nested = (s["payload"] for s in ingest.accepted_signals)
    assert (reserved["_count"], reserved["__count"]) == ("2", "1")  # main: one value lost
    assert nested["a.b"] == "2"
    warnings = _warnings(caplog)
    assert any("'count' is reserved" in message for message in warnings)
    assert any("'a.b' occurs twice" in message for message in warnings)


def test_one_warning_per_kind_whatever_the_values(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(ingest) as client:
        for length in range(5000, 5050):
            client.signal("Long.values", {f"key{length}": "x" * length})
        assert client.flush(30)
    assert len(ingest.accepted_signals) == 50
    # Main keyed the throttle by key and length: fifty lines for one kind of problem.
    assert len([m for m in _warnings(caplog) if "characters; cut to" in m]) == 1


def test_long_user_ids_are_hashed_but_never_kept_in_the_cache(ingest: IngestServer) -> None:
    with _client(ingest) as client:
        for i in range(20):
            client.signal("Big.user", client_user=f"{i}-" + "u" * 100_000)
        client.signal("Small.user", client_user="user-1")
        assert client.flush(30)
        cached = client.builder._user_hash._values
        assert list(cached) == ["user-1"]  # main: twenty keys of 100 kB each
    assert len({s["clientUser"] for s in ingest.accepted_signals}) == 21


def test_records_estimate_their_size_cheaply() -> None:
    record = CustomSignal("Type", {"key": "v" * 1000}, None, "user", None, "session-key")
    # The text a record holds, plus a fixed estimate for the objects holding it.
    assert 1000 < record.approx_size() - RECORD_OVERHEAD < 1100
    built = BuiltSignal({"type": "T", "payload": {"k": "v" * 500}, "clientUser": "c"})
    assert 500 < built.approx_size() - RECORD_OVERHEAD < 600


SIGTERM_WHILE_LOGGING = """
import logging, os, signal, sys, time
from td_web._log import throttled
from td_web._web import WebTelemetry
logging.basicConfig(level=logging.WARNING)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
web = WebTelemetry.from_options({{"app_id": "{app_id}", "endpoint": "{url}", "flush_interval": 3600,
                                  "initial_backoff": 0.05, "shutdown_timeout": 5}})
for i in range(10):
    web.client.signal("Before.sigterm", {{"i": i}})

class Kind(str):
    # SIGTERM arrives while the main thread is inside the throttler (looking the key up).
    def __hash__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return str.__hash__(self)

throttled.warning(Kind("a-kind"), "td_web: a warning")
time.sleep(30)
sys.exit(3)
"""


def test_sigterm_while_the_main_thread_is_in_the_log_throttler_still_delivers(
    ingest: IngestServer,
) -> None:
    """The handler waits for the sender thread, whose first failed attempt logs a throttled
    warning: with a lock held by the interrupted main thread, both would wait for ever."""
    ingest.script(Reply(status=503))
    code = SIGTERM_WHILE_LOGGING.format(app_id=APP_ID, url=ingest.url)
    result = run_python(code)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals) == list(range(10))


def test_long_route_templates_are_normalized_but_not_cached() -> None:
    from td_web._web.routes import _cached_normalize, normalize_route

    before = _cached_normalize.cache_info().currsize
    concrete = "/mounted/" + "x" * 10_000 + "/items/{item_id:int}"
    assert normalize_route(concrete).endswith("/items/{item_id}")
    assert _cached_normalize.cache_info().currsize == before


@pytest.mark.parametrize(
    "path",
    [
        "/blog/top-10-tips-for-2024-holidays/",
        "/docs/internationalization/",
        "/items/42/reviews",
        "/@handle/posts",
        "/archive/2024/12/31",
        "/static-ish/iphone15promax256gb",
    ],
)
def test_ordinary_paths_are_not_redacted(path: str) -> None:
    from td_web._web.redaction import PathRedactor

    assert PathRedactor().path(path) == path


def test_the_route_is_cleaned_too(ingest: IngestServer) -> None:
    """An ASGI mount td_web cannot retrace leaves concrete text in the route template."""
    from td_web import RequestView
    from td_web._web import WebTelemetry

    web = WebTelemetry.from_options(
        {"app_id": APP_ID, "salt": "s", "endpoint": ingest.url, "handle_sigterm": False}
    )
    view = RequestView(method="GET", scheme="https", host="h", path="/t/dave@example.com/x")
    web.begin(view).finish(200, "text/html", "/t/dave@example.com/{rest}")
    assert web.client.flush(30)
    [page_view] = [s for s in ingest.accepted_signals if s["type"] == "pageView"]
    assert page_view["payload"]["HTTP.route"] == "/t/{email}/{rest}"
    web.client.close(0)
