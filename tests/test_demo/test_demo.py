"""``td-web demo`` end to end: a real collector, the example site under runserver, traffic, and
the summary; then the live page, rendered by headless Chromium, shows what the demo sent."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import ARTIFACTS, png_size_and_colours, run_chromium
from conftest import environment_without_telemetrydeck

from td_web.collector import Collector

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    db = tmp_path_factory.mktemp("demo") / "collector.sqlite3"
    env = environment_without_telemetrydeck()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "td_web.cli",
            "demo",
            "--no-wait",
            "--port",
            "0",
            "--db",
            str(db),
            "--visitors",
            "6",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return result, db


def test_demo_exits_zero_with_zero_violations(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, _ = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Violations: 0. all checks passed." in out
    assert re.search(r"requests tracked / automatic signals\s+(\d+)\s+\1\b", out)
    assert re.search(r"unhandled errors / error signals\s+1\s+1\b", out)
    for expected in (
        "pageView",
        "HTTP.request",
        "TelemetryDeck.Session.started",
        "Checkout.completed",
        "/catalog/products/{slug}/",
        "Live page: http://",
    ):
        assert expected in out
    sessions = re.search(r"sessions \(one per visitor's cookie\)\s+(\d+)", out)
    assert sessions is not None
    # Six visitors: the crawler starts none, one visitor comes back for a second session.
    assert int(sessions.group(1)) == 6
    for title in ("Top browsers", "Top systems", "Top countries"):
        section = out.split(title, 1)[1].split("\n\n", 1)[0]
        assert len(re.findall(r"^\s+\S.*\s(\d+)$", section, re.M)) >= 2, section


def test_live_page_shows_the_demo_signals(
    demo_run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, db = demo_run
    with Collector(db, port=0) as collector:  # the demo's data outlives the demo
        page = collector.url + "/"
        dom = run_chromium(page, tmp_path / "dom-profile", "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout.decode()
        rows = re.findall(r'<tr class="signal[^"]*" data-type="([^"]*)"', html)
        assert "pageView" in rows
        assert "Checkout.completed" in rows or "Contact.submitted" in rows
        # Every web-dashboard panel has data.
        for chart in ("browsers", "systems", "devices", "sources", "visitors"):
            svg = re.search(rf'<svg id="chart-{chart}"[^>]*>(.*?)</svg>', html, re.S)
            assert svg and 'class="bar' in svg.group(1), chart
        assert re.search(r'<tr class="country" data-code="[A-Z]{2}">', html)
        assert "returning" in html and ">tablet<" in html and ">phone<" in html
        assert re.search(r"<title>hour \d+: [1-9]", html)
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "demo-live-page.png"
        screenshot.unlink(missing_ok=True)
        shot = run_chromium(page, tmp_path / "shot-profile", f"--screenshot={screenshot}")
        assert shot.returncode == 0, shot.stderr[-2000:]
    width, height, distinct = png_size_and_colours(screenshot.read_bytes())
    assert (width, height) == (1280, 900)
    assert distinct > 100
