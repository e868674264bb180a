"""New and returning visitors from the opt-in signed visitor cookie: the keys at the real ingest
server through Flask, the cookie's arithmetic over days, and every broken cookie."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from ingest_server import IngestServer
from test_dashboard.dashboard_support import SALT, dashboard_app

from td_web import ConfigurationError
from td_web._web.settings import build_web_settings
from td_web._web.visitors import NEW_VISITOR_SIGNAL, VisitorPolicy

DAY = 86400
START = 20_000 * DAY + 10 * 3600  # 2024-10-04 10:00 UTC
RETENTION = "TelemetryDeck.Retention."


def policy(**options: Any) -> VisitorPolicy:
    found = VisitorPolicy.for_settings(
        build_web_settings({"visitor_cookie": True, **options}), SALT
    )
    assert found is not None
    return found


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def test_first_and_returning_visits_at_the_ingest_server(ingest: IngestServer) -> None:
    app, flush = dashboard_app(ingest, visitor_cookie=True)
    client = app.test_client()
    first = client.get("/")
    assert any(h.startswith("td_visitor=") for h in first.headers.getlist("Set-Cookie"))
    client.get("/page/two")  # same session
    client.delete_cookie("td_session")  # the session ended: the next request starts one
    client.get("/page/three")
    assert flush()
    signals = ingest.accepted_signals
    types = [s["type"] for s in signals]
    assert types.count(NEW_VISITOR_SIGNAL) == 1
    assert types.count("TelemetryDeck.Session.started") == 2
    starts = [s["payload"] for s in signals if s["type"] == "TelemetryDeck.Session.started"]
    assert starts[0][RETENTION + "totalSessionsCount"] == "1"
    assert starts[1][RETENTION + "totalSessionsCount"] == "2"
    assert starts[1][RETENTION + "distinctDaysUsed"] == "1"
    assert RETENTION + "previousSessionSeconds" in starts[1]
    dates = {s["payload"].get("TelemetryDeck.Acquisition.firstSessionDate") for s in signals}
    assert len(dates) == 1 and None not in dates
    second_page = next(s for s in signals if s["payload"].get("path") == "/page/two")
    assert not any(key.startswith(RETENTION) for key in second_page["payload"])


def test_counts_over_days_and_the_last_month() -> None:
    visitors = policy()
    visit = visitors.visit(None, True, True, now=START)
    assert visit.first_visit and visit.keys[RETENTION + "totalSessionsCount"] == "1"
    cookie = cookie_value(visit.cookie_header)
    # The same session, 10 minutes on: nothing counted, the session's length grows.
    cookie = cookie_value(
        visitors.visit(f"td_visitor={cookie}", False, True, START + 600).cookie_header
    )
    # Next day, a new session: the previous one lasted 600 s.
    visit = visitors.visit(f"td_visitor={cookie}", True, True, START + DAY)
    assert not visit.first_visit
    assert visit.keys[RETENTION + "totalSessionsCount"] == "2"
    assert visit.keys[RETENTION + "distinctDaysUsed"] == "2"
    assert visit.keys[RETENTION + "distinctDaysUsedLastMonth"] == "2"
    assert visit.keys[RETENTION + "previousSessionSeconds"] == "600"
    assert visit.keys[RETENTION + "averageSessionSeconds"] == "600"
    assert visit.keys["TelemetryDeck.Acquisition.firstSessionDate"] == "2024-10-04"
    cookie = cookie_value(visit.cookie_header)
    # Forty days later: three distinct days in all, only today within the last month.
    visit = visitors.visit(f"td_visitor={cookie}", True, True, START + 41 * DAY)
    assert visit.keys[RETENTION + "distinctDaysUsed"] == "3"
    assert visit.keys[RETENTION + "distinctDaysUsedLastMonth"] == "1"
    assert visit.keys[RETENTION + "averageSessionSeconds"] == "300"  # (600 + 0) / 2


def broken_cookies() -> dict[str, str]:
    visitors = policy()
    good = cookie_value(visitors.visit(None, True, True, now=START).cookie_header)
    body, _, signature = good.rpartition(".")
    fields = body.split(".")
    inflated = ".".join([fields[0], fields[1], "999", *fields[3:]])
    future = cookie_value(visitors.visit(None, True, True, now=START + 400 * DAY).cookie_header)
    other_salt = VisitorPolicy(build_web_settings({"visitor_cookie": True}), "another salt")
    return {
        "tampered": f"{inflated}.{signature}",
        "truncated": good[: len(good) // 2],
        "from-the-future": future,
        "other-salt": cookie_value(other_salt.visit(None, True, True, now=START).cookie_header),
        "garbage": "\x00\xff" * 50,
        "huge": "1." + "9" * 5000,
        "empty-signature": body + ".",
    }


@pytest.mark.parametrize("name", list(broken_cookies()))
def test_a_broken_cookie_gives_no_keys_and_no_exception(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    visitors = policy()
    raw = broken_cookies()[name]
    visit = visitors.visit(f"td_visitor={raw}", True, True, now=START + DAY)
    assert visit.keys == {}
    assert not visit.first_visit
    # Replaced by a fresh, valid cookie.
    assert visitors.read(cookie_value(visit.cookie_header), START + DAY) is not None
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 1


def test_a_broken_cookie_through_flask_still_sends_the_page_view(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, flush = dashboard_app(ingest, visitor_cookie=True)
    client = app.test_client()
    client.set_cookie("td_visitor", broken_cookies()["tampered"])
    for _ in range(3):
        assert client.get("/").status_code == 200
        client.delete_cookie("td_visitor")
        client.set_cookie("td_visitor", broken_cookies()["tampered"])
    assert flush()
    views = [s for s in ingest.accepted_signals if s["type"] == "pageView"]
    assert len(views) == 3
    assert not any(s["type"] == NEW_VISITOR_SIGNAL for s in ingest.accepted_signals)
    assert not any(key.startswith(RETENTION) for s in views for key in s["payload"])
    warnings = [r for r in caplog.records if "td_visitor" in r.getMessage()]
    assert len(warnings) == 1  # throttled


def test_never_set_in_cookieless_mode_or_against_gpc(ingest: IngestServer) -> None:
    with pytest.raises(ConfigurationError, match="cookieless"):
        dashboard_app(ingest, visitor_cookie=True, cookieless=True)
    for respect_gpc in (False, True):
        app, flush = dashboard_app(ingest, visitor_cookie=True, respect_gpc=respect_gpc)
        response = app.test_client().get("/", headers={"Sec-GPC": "1"})
        assert not any(h.startswith("td_visitor=") for h in response.headers.getlist("Set-Cookie"))
        assert flush()
    assert not any(s["type"] == NEW_VISITOR_SIGNAL for s in ingest.accepted_signals)


def test_off_by_default(ingest: IngestServer) -> None:
    app, _flush = dashboard_app(ingest)
    response = app.test_client().get("/")
    assert not any(h.startswith("td_visitor=") for h in response.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"visitor_cookie": "maybe"}, "visitor_cookie"),
        ({"visitor_cookie": True, "salt": ""}, "salt"),
        ({"visitor_cookie": True, "visitor_cookie_name": "td_session"}, "visitor_cookie_name"),
        ({"visitor_cookie_name": "bad name"}, "visitor_cookie_name"),
        ({"visitor_cookie_max_age": -1}, "visitor_cookie_max_age"),
    ],
)
def test_bad_visitor_settings_fail_at_start_up(
    ingest: IngestServer, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        dashboard_app(ingest, **options)


def test_the_cookie_holds_no_identifier() -> None:
    visitors = policy()
    header = visitors.visit(None, True, True, now=START).cookie_header
    body = cookie_value(header).rpartition(".")[0]
    # Only small counts and times: version, first day, sessions, days, last day, month mask,
    # session start, last seen, previous and earlier seconds.
    assert body.split(".") == [
        "1",
        "20000",
        "1",
        "1",
        "20000",
        "1",
        str(START),
        str(START),
        "0",
        "0",
    ]
    assert "HttpOnly" in header and "Secure" in header and "Max-Age=34560000" in header
