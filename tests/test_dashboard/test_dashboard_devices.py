"""Browser, system and device keys from real User-Agent headers, as they arrive at the real local
ingest server through a Flask app; the header itself never does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import run_python
from ingest_server import IngestServer
from test_dashboard.dashboard_support import built, close_clients, dashboard_app, page_views
from user_agent_cases import CASES, Case

from td_web._web.device import MAX_PARSED_LENGTH, DeviceParser

FLAGS = {"bot": "isBot", "mobile": "isMobile", "tablet": "isTablet", "desktop": "isDesktop"}


@pytest.fixture(scope="module")
def received() -> Iterator[dict[str, dict[str, Any]]]:
    """Every case's page view (bots tracked, so that their keys can be read), by case name."""
    first = len(built)
    with IngestServer() as ingest:
        app, flush = dashboard_app(ingest, track_bots=True)
        client = app.test_client()
        for case in CASES:
            response = client.get(f"/page/{case.name}", headers={"User-Agent": case.user_agent})
            assert response.status_code == 200
        assert flush()
        by_name = {s["payload"]["path"].rsplit("/", 1)[1]: s for s in page_views(ingest)}
        raw = b"".join(request.raw for request in ingest.requests)
        for case in CASES:
            assert case.user_agent.encode() not in raw, f"{case.name}: the header was sent"
        yield by_name
        close_clients(first)


def test_at_least_forty_real_user_agents() -> None:
    assert len(CASES) >= 40
    families = {case.name.split("-")[0] for case in CASES}
    assert {"chrome", "safari", "firefox", "edge", "samsung", "opera", "android"} <= families
    assert {"curl", "googlebot", "bingbot"} <= families


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_device_keys_at_the_ingest_server(received: dict[str, dict[str, Any]], case: Case) -> None:
    payload = received[case.name]["payload"]
    assert payload["browserName"] == case.browser
    assert payload.get("browserVersion", "").split(".")[0] == case.browser_major
    assert payload.get("TelemetryDeck.Device.operatingSystem", "") == case.system
    assert payload.get("TelemetryDeck.Device.platform", "") == case.system
    assert payload.get("majorSystemVersion", "") == case.system_major
    if case.system_major:
        assert payload["TelemetryDeck.Device.systemMajorVersion"] == (
            f"{case.system} {case.system_major}"
        )
        assert payload["systemVersion"].startswith(payload["majorMinorSystemVersion"])
    kind = next((name for name, flag in FLAGS.items() if payload[flag] == "true"), "other")
    assert kind == case.kind
    assert payload["isTouchCapable"] == ("true" if case.kind in ("mobile", "tablet") else "false")
    # The reserved wire key is never sent (the ingest server would rename it _platform).
    assert "platform" not in payload and "_platform" not in payload


def test_phone_model_and_brand(received: dict[str, dict[str, Any]]) -> None:
    payload = received["samsung-s23"]["payload"]
    assert payload["modelName"] == payload["TelemetryDeck.Device.modelName"] == "SM-S918B"
    assert payload["TelemetryDeck.Device.brand"] == "Samsung"
    assert received["safari-iphone"]["payload"]["TelemetryDeck.Device.brand"] == "Apple"


def test_default_bot_exclusion_still_holds_and_the_library_adds_crawlers(
    ingest: IngestServer,
) -> None:
    app, flush = dashboard_app(ingest)
    client = app.test_client()
    googlebot = next(case.user_agent for case in CASES if case.name == "googlebot")
    for path, agent in (
        ("/page/googlebot", googlebot),  # today's regular expression
        ("/page/yeti", "Yeti/1.1 (+http://naver.me/spd)"),  # only the library knows it
        ("/page/nutch", "Apache-Nutch/1.19"),
        ("/page/headless", "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0"),
        ("/page/person", CASES[0].user_agent),
    ):
        assert client.get(path, headers={"User-Agent": agent}).status_code == 200
    assert flush()
    assert [s["payload"]["path"] for s in page_views(ingest)] == ["/page/person"]
    assert not any(
        s["type"] == "TelemetryDeck.Session.started" and s["payload"].get("isBot") == "true"
        for s in ingest.accepted_signals
    )


def test_tracked_headless_browser_is_marked_a_bot(ingest: IngestServer) -> None:
    app, flush = dashboard_app(ingest, track_bots=True)
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0.0.0 Safari"
    assert app.test_client().get("/", headers={"User-Agent": agent}).status_code == 200
    assert flush()
    (view,) = page_views(ingest)
    assert view["payload"]["isBot"] == "true"
    assert view["payload"]["isDesktop"] == "false"


@pytest.mark.parametrize(
    "agent",
    [
        "",
        "   ",
        "definitely not a browser",
        "Mozilla/5.0 (" + "A" * 100_000,
        "\x00\x01\x02\xff\xfe binary \x7f",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36" * 1500,
    ],
    ids=["empty", "blank", "unparseable", "100kB", "binary", "repeated"],
)
def test_bad_user_agents_give_a_signal_without_device_keys_or_a_bounded_parse(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture, agent: str
) -> None:
    app, flush = dashboard_app(ingest)
    environ = {"HTTP_USER_AGENT": agent}
    assert app.test_client().get("/", environ_overrides=environ).status_code == 200
    assert flush()
    (view,) = page_views(ingest)
    payload = view["payload"]
    assert payload.get("browserName") in (None, "Chrome", "Other")
    assert agent[:40].strip() not in "".join(str(v) for v in payload.values()) or not agent.strip()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_the_parse_reads_a_bounded_prefix_and_the_cache_stays_bounded() -> None:
    parser = DeviceParser()
    huge = "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0.0.0 " + "x" * 200_000
    assert parser.keys(huge)["browserName"] == "Chrome"
    assert huge not in parser._cache and not parser._cache
    for number in range(5000):
        parser.keys(f"curl/8.{number}.0")
    assert len(parser._cache) <= 4096
    assert MAX_PARSED_LENGTH <= 1024


def test_device_keys_can_be_switched_off(ingest: IngestServer) -> None:
    app, flush = dashboard_app(ingest, device_keys=False)
    assert app.test_client().get("/", headers={"User-Agent": CASES[0].user_agent}).status_code
    assert flush()
    (view,) = page_views(ingest)
    assert "browserName" not in view["payload"] and "isBot" not in view["payload"]


def test_text_of_the_clients_own_never_becomes_a_device_key(ingest: IngestServer) -> None:
    """uap-core's catch-all rules copy the model slot of an unknown Android phone verbatim:
    that text (here a canary) is not sent, nor the header around it."""
    app, flush = dashboard_app(ingest)
    agent = (
        "Mozilla/5.0 (Linux; Android 14; CANARY-model-7f3a) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
    )
    assert app.test_client().get("/", headers={"User-Agent": agent}).status_code == 200
    assert flush()
    (view,) = page_views(ingest)
    assert view["payload"]["browserName"] == "Chrome Mobile"
    assert view["payload"]["isMobile"] == "true"
    assert b"CANARY" not in b"".join(request.raw for request in ingest.requests)


def test_a_process_exiting_while_the_rules_compile_exits_with_its_own_status() -> None:
    """The rules compile in a background thread; a process that exits at once (a failed
    startup, a short command) waits for them instead of finalizing under a thread still in
    their compiled code, which aborted the process (SIGABRT) now and then."""
    result = run_python(
        """
        import atexit, sys
        from td_web._web import device

        atexit.register(lambda: print("loaded at exit:", device._loaded))
        device.DeviceParser.warm_up()
        sys.exit(3)
        """
    )
    assert result.returncode == 3, result.stderr
    assert "loaded at exit: True" in result.stdout
