"""The web-dashboard panels of the live page, rendered by a real headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import run_chromium

from td_web.collector import Collector

Signal = Callable[..., dict[str, Any]]

pytestmark = pytest.mark.slow

VISITS = [
    # browser, system, device flags, country, source, hour
    ("Chrome", "Windows", "isDesktop", "DE", "newsletter", "9"),
    ("Chrome", "Android", "isMobile", "DE", None, "9"),
    ("Mobile Safari", "iOS", "isMobile", "US", "producthunt", "21"),
    ("Mobile Safari", "iPadOS", "isTablet", "FR", None, "21"),
    ("Firefox", "Linux", "isDesktop", "US", "newsletter", "21"),
    ("Googlebot", "", "isBot", "", None, "3"),
]


@pytest.fixture
def dashboard_collector(collector: Collector, post: Any, signal_factory: Signal) -> Collector:
    batch = []
    for number, (browser, system, flag, country, source, hour) in enumerate(VISITS):
        payload = {
            "path": "/",
            "host": "shop.example",
            "browserName": browser,
            "TelemetryDeck.Calendar.hourOfDay": hour,
            **{
                f: "true" if f == flag else "false"
                for f in ("isDesktop", "isMobile", "isTablet", "isBot")
            },
        }
        if system:
            payload["TelemetryDeck.Device.operatingSystem"] = system
        if country:
            payload["country.isoCode"] = country
        if source:
            payload["combinedSource"] = source
        batch.append(signal_factory(type="pageView", sessionID=f"s{number}", payload=payload))
        sessions = "1" if number % 2 else "3"
        batch.append(
            signal_factory(
                type="TelemetryDeck.Session.started",
                sessionID=f"s{number}",
                payload={"TelemetryDeck.Retention.totalSessionsCount": sessions},
            )
        )
    assert post(batch).status_code == 200
    return collector


def bar_labels(dom: str, chart_id: str) -> list[str]:
    svg = re.search(rf'<svg id="{chart_id}"[^>]*>(.*?)</svg>', dom, re.S)
    assert svg, chart_id
    return re.findall(r"<text[^>]*>([^<]*)<title>", svg.group(1))


def test_dashboard_panels_in_chromium(dashboard_collector: Collector, tmp_path: Path) -> None:
    result = run_chromium(dashboard_collector.url + "/", tmp_path / "profile", "--dump-dom")
    dom = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, result.stderr[-2000:]
    assert bar_labels(dom, "chart-browsers") == ["Chrome", "Mobile Safari", "Firefox", "Googlebot"]
    assert set(bar_labels(dom, "chart-systems")) == {"Windows", "Android", "iOS", "iPadOS", "Linux"}
    assert bar_labels(dom, "chart-devices") == ["desktop", "phone", "bot", "tablet"]
    assert bar_labels(dom, "chart-sources") == ["direct", "newsletter", "producthunt"]
    assert bar_labels(dom, "chart-visitors") == ["new", "returning"]
    countries = re.findall(r'<tr class="country" data-code="([A-Z]{2})">', dom)
    assert countries == ["DE", "US", "FR"]
    assert "\U0001f1e9\U0001f1ea" in dom  # the German flag
    hours = re.findall(r"<title>hour (\d+): (\d+)</title>", dom)
    assert len(hours) == 24
    assert dict(hours)["21"] == "3" and dict(hours)["9"] == "2" and dict(hours)["3"] == "1"
    assert "latest 6 page views" in dom
