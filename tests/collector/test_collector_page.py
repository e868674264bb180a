"""The live page, rendered by a real headless Chromium: the script runs, fetches and draws."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS, png_size_and_colours, run_chromium

from td_web.collector import Collector

Signal = Callable[..., dict[str, Any]]

pytestmark = pytest.mark.slow


def feed_types(dom: str) -> list[str]:
    return re.findall(r'<tr class="signal[^"]*" data-type="([^"]*)"', dom)


@pytest.fixture
def page_collector(collector: Collector, post: Any, signal_factory: Signal) -> Collector:
    routes = ["/", "/articles/<slug>", "/api/items/{id}"]
    batch = [
        signal_factory(
            type="Page.rendered" if number % 3 else "Checkout.completed",
            sessionID=f"session{number % 2}",
            isTestMode=number % 4 == 0,
            payload={
                "HTTP.route": routes[number % 3],
                "TelemetryDeck.Signal.durationInSeconds": f"{0.01 * (number + 1):.3f}",
                "Example.number": str(number),
            },
        )
        for number in range(30)
    ]
    assert post(batch).status_code == 200
    assert post([signal_factory(type="Broken.signal", payload={"count": 1})]).status_code == 400
    return collector


def test_live_page_shows_signals_charts_and_violations(
    page_collector: Collector, tmp_path: Path
) -> None:
    result = run_chromium(page_collector.url + "/", tmp_path / "profile", "--dump-dom")
    dom = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, result.stderr[-2000:]
    # Rows exist only if app.js ran, fetched /api/signals and built the table.
    types = feed_types(dom)
    assert types.count("Page.rendered") == 20
    assert types.count("Checkout.completed") == 10
    assert 'data-state="live"' in dom
    # The rejected signal is highlighted with the rule it broke.
    assert re.search(r'<tr class="violation[^"]*" data-rules="payload.reserved_key"', dom)
    assert '<span class="rule">payload.reserved_key</span>' in dom
    assert "Broken.signal" in dom
    # Charts were drawn: per-minute bars, top types, routes and median durations.
    assert dom.count('class="bar"') >= 60 + 2
    assert dom.count('class="bar alt"') == 3
    assert dom.count('class="bar slow"') == 3
    assert ">/articles/&lt;slug&gt;<" in dom  # route labels, escaped as text
    assert '<dd id="count-signals" class="nonzero">30</dd>' in dom


def test_live_page_applies_filters_from_its_address(
    page_collector: Collector, tmp_path: Path
) -> None:
    url = page_collector.url + "/?type=Checkout.completed&test_mode=false&violations=hide"
    result = run_chromium(url, tmp_path / "profile", "--dump-dom")
    dom = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, result.stderr[-2000:]
    types = feed_types(dom)
    # Checkout.completed is every third signal (0, 3, ... 27); test mode every fourth (0, 12, 24).
    assert types == ["Checkout.completed"] * 7
    assert 'class="violation' not in dom
    assert (
        '<dd id="count-signals">7</dd>' in dom
        or '<dd id="count-signals" class="nonzero">7</dd>' in dom
    )


def test_live_page_screenshot(page_collector: Collector, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "collector-live-page.png"
    screenshot.unlink(missing_ok=True)
    result = run_chromium(
        page_collector.url + "/", tmp_path / "profile", f"--screenshot={screenshot}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.exists()
    data = screenshot.read_bytes()
    width, height, distinct = png_size_and_colours(data)
    assert (width, height) == (1280, 900)
    # A blank or single-colour page compresses to a few KB and has a handful of byte values.
    assert len(data) > 40_000
    assert distinct > 100
