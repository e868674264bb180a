"""The JSON API behind the live page, and the page's own files."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from td_web._transport import http_library
from td_web.collector import RULES, Collector
from td_web.collector import store as store_module

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

Signal = Callable[..., dict[str, Any]]


@pytest.fixture
def filled(collector: Collector, post: Any, signal_factory: Signal) -> Collector:
    """Six signals over two types, two sessions, both modes; and one rejected batch."""
    batch = [
        signal_factory(
            type="pageView", sessionID="s1", isTestMode=False, payload={"HTTP.route": "/"}
        ),
        signal_factory(
            type="pageView",
            sessionID="s1",
            isTestMode=True,
            payload={"HTTP.route": "/", "TelemetryDeck.Signal.durationInSeconds": "0.100"},
        ),
        signal_factory(
            type="pageView",
            sessionID="s2",
            drop=["isTestMode"],
            payload={"HTTP.route": "/", "TelemetryDeck.Signal.durationInSeconds": "0.300"},
        ),
        signal_factory(
            type="HTTP.request",
            sessionID="s2",
            isTestMode=False,
            payload={"HTTP.route": "/", "TelemetryDeck.Signal.durationInSeconds": "0.200"},
        ),
        signal_factory(
            type="HTTP.request",
            sessionID="s2",
            isTestMode=True,
            payload={"HTTP.route": "/slow", "TelemetryDeck.Signal.durationInSeconds": "2.000"},
        ),
        signal_factory(type="HTTP.request", sessionID="s1", isTestMode=False, payload={}),
    ]
    assert post(batch).status_code == 200
    assert post([signal_factory(type="Bad.one", payload={"type": "x"})]).status_code == 400
    return collector


def api(collector: Collector, path: str, **params: Any) -> Any:
    response = httpx.get(collector.url + path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def types_and_ids(answer: dict[str, Any]) -> list[tuple[int, str]]:
    return [(s["id"], s["type"]) for s in answer["signals"]]


def test_signals_newest_first_by_default(filled: Collector) -> None:
    ids = [s["id"] for s in api(filled, "/api/signals")["signals"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 6


def test_signals_oldest_first_with_order_asc_and_since_id(filled: Collector) -> None:
    everything = api(filled, "/api/signals", order="asc")["signals"]
    third = everything[2]["id"]
    after = api(filled, "/api/signals", order="asc", since_id=third, limit=2)["signals"]
    assert [s["id"] for s in after] == [everything[3]["id"], everything[4]["id"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "pageView"}, 3),
        ({"type": "HTTP.request"}, 3),
        ({"type": "nothing"}, 0),
        ({"session": "s1"}, 3),
        ({"session": "s2", "type": "pageView"}, 1),
        ({"test_mode": "true"}, 2),
        ({"test_mode": "false"}, 4),  # a signal without isTestMode counts as production
        ({"test_mode": "all"}, 6),
        ({"test_mode": ""}, 6),
        ({"type": ""}, 6),
    ],
)
def test_signal_filters(filled: Collector, params: dict[str, str], expected: int) -> None:
    signals = api(filled, "/api/signals", **params)["signals"]
    assert len(signals) == expected
    for signal in signals:
        if params.get("type"):
            assert signal["type"] == params["type"]
        if params.get("session"):
            assert signal["session_id"] == params["session"]
        if params.get("test_mode") == "true":
            assert signal["is_test_mode"] is True


def test_signal_rows_carry_the_whole_signal(filled: Collector) -> None:
    newest = api(filled, "/api/signals", limit=1)["signals"][0]
    assert newest["signal"]["type"] == newest["type"] == "HTTP.request"
    assert set(newest) >= {
        "id",
        "received_at",
        "namespace",
        "type",
        "client_user",
        "session_id",
        "is_test_mode",
        "route",
        "duration",
        "signal",
    }


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/signals", {"test_mode": "maybe"}),
        ("/api/signals", {"since_id": "-1"}),
        ("/api/signals", {"limit": "0"}),
        ("/api/signals", {"limit": "abc"}),
        ("/api/signals", {"order": "sideways"}),
        ("/api/stats", {"minutes": "soon"}),
        ("/api/violations", {"since_id": "x"}),
    ],
)
def test_bad_parameters_are_400(collector: Collector, path: str, params: dict[str, str]) -> None:
    response = httpx.get(collector.url + path, params=params)
    assert response.status_code == 400
    assert response.json()["error"]


def test_violations_endpoint_and_its_filters(filled: Collector, post: Any) -> None:
    post(b"{}")
    everything = api(filled, "/api/violations", order="asc")["violations"]
    assert [(v["rule"], v["signal_type"]) for v in everything] == [
        ("payload.reserved_key", "Bad.one"),
        ("body.not_array", None),
    ]
    only_rule = api(filled, "/api/violations", rule="body.not_array")["violations"]
    assert [v["rule"] for v in only_rule] == ["body.not_array"]
    by_type = api(filled, "/api/violations", type="Bad.one")["violations"]
    assert [v["rule"] for v in by_type] == ["payload.reserved_key"]
    after = api(filled, "/api/violations", since_id=everything[0]["id"])["violations"]
    assert [v["rule"] for v in after] == ["body.not_array"]


def test_stats(filled: Collector) -> None:
    stats = api(filled, "/api/stats")
    assert stats["total_signals"] == 6
    assert stats["signals_in_window"] == 6
    assert stats["total_violations"] == 1
    assert stats["batches_accepted"] == 1
    assert stats["batches_rejected"] == 1
    assert sum(bucket["count"] for bucket in stats["per_minute"]) == 6
    assert len(stats["per_minute"]) == 60
    assert stats["top_types"] == [
        {"type": "HTTP.request", "count": 3},
        {"type": "pageView", "count": 3},
    ]
    assert stats["top_routes"] == [{"route": "/", "count": 4}, {"route": "/slow", "count": 1}]
    assert stats["median_duration_by_route"] == [
        {"route": "/slow", "median_seconds": 2.0, "count": 1},
        {"route": "/", "median_seconds": statistics.median([0.1, 0.3, 0.2]), "count": 3},
    ]
    assert stats["violations_by_rule"] == [{"rule": "payload.reserved_key", "count": 1}]


def test_stats_follow_the_filters(filled: Collector) -> None:
    stats = api(filled, "/api/stats", type="pageView", test_mode="false")
    assert stats["total_signals"] == 2
    assert stats["signals_in_window"] == 2
    assert sum(bucket["count"] for bucket in stats["per_minute"]) == 2
    assert stats["top_types"] == [{"type": "pageView", "count": 2}]
    assert stats["median_duration_by_route"] == [{"route": "/", "median_seconds": 0.3, "count": 1}]


def test_stats_window_excludes_older_signals(filled: Collector) -> None:
    later = filled.store.stats(minutes=5, now=time.time() + 3600)
    assert later["signals_in_window"] == 0
    assert later["total_signals"] == 6
    assert sum(bucket["count"] for bucket in later["per_minute"]) == 0


def test_rules_and_health(collector: Collector) -> None:
    rules = api(collector, "/api/rules")["rules"]
    assert {item["rule"] for item in rules} == set(RULES)
    assert api(collector, "/api/health") == {"status": "ok"}


def test_page_and_its_files_are_served(collector: Collector) -> None:
    page = httpx.get(collector.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text
    script = httpx.get(collector.url + "/static/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "/api/signals" in script.text
    style = httpx.get(collector.url + "/static/style.css")
    assert style.headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["/static/../store.py", "/static/missing.js", "/api/nothing", "/elsewhere"]
)
def test_unknown_paths_are_404(collector: Collector, path: str) -> None:
    assert httpx.get(collector.url + path).status_code == 404


def test_charts_use_the_latest_signals_when_there_are_many(
    filled: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CHART_SAMPLE_ROWS", 2)
    stats = api(filled, "/api/stats")
    assert stats["sampled"] is True
    assert stats["chart_sample_rows"] == 2
    # The latest two signals are both HTTP.request; the counts still cover everything.
    assert stats["top_types"] == [{"type": "HTTP.request", "count": 2}]
    assert stats["top_routes"] == [{"route": "/slow", "count": 1}]
    assert stats["signals_in_window"] == 6
    assert sum(bucket["count"] for bucket in stats["per_minute"]) == 6
    assert api(filled, "/api/stats", type="pageView")["sampled"] is True
    assert api(filled, "/api/stats", session="s2", type="pageView")["sampled"] is False
