"""td_web.job(): started/finished signals, outcome, duration, current() inside, delivered when
the job ends, and never a change to the job's own outcome."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer, free_port

import td_web
from td_web import TelemetryDeck

# A minute between background sends: only the job's own flush can deliver in time.
SLOW = {"flush_interval": 60.0}


@pytest.fixture
def client(ingest: IngestServer) -> Iterator[TelemetryDeck]:
    td = TelemetryDeck(app_id=APP_ID, salt="pepper", endpoint=ingest.url, **SLOW)
    yield td
    td.close(1)


def by_type(ingest: IngestServer) -> dict[str, dict[str, Any]]:
    return {s["type"]: s for s in ingest.accepted_signals}


def test_a_job_sends_started_and_finished_and_delivers_before_it_returns(
    ingest: IngestServer, client: TelemetryDeck
) -> None:
    with td_web.job("Nightly.export", client=client, payload={"Export.kind": "full"}):
        td_web.current().signal("Export.rows", float_value=1200)

    sent = by_type(ingest)  # no waiting: the job delivered before the with block ended
    assert set(sent) == {"Job.started", "Export.rows", "Job.finished"}
    finished = sent["Job.finished"]["payload"]
    assert finished["Job.name"] == "Nightly.export"
    assert finished["Job.outcome"] == "succeeded"
    assert finished["Export.kind"] == "full"
    assert float(finished["TelemetryDeck.Signal.durationInSeconds"]) >= 0
    assert sent["Job.started"]["payload"]["Job.name"] == "Nightly.export"
    # One session for the job and what ran inside it.
    assert len({s["sessionID"] for s in sent.values()}) == 1
    assert len({s["clientUser"] for s in sent.values()}) == 1


def test_a_failing_job_keeps_its_exception_and_reports_only_its_class(
    ingest: IngestServer, client: TelemetryDeck
) -> None:
    class ExportFailed(Exception):
        pass

    failure = ExportFailed("secret-canary-7f3a in the message")

    @td_web.job("Nightly.export", client=client)
    def export() -> None:
        raise failure

    with pytest.raises(ExportFailed) as raised:
        export()
    assert raised.value is failure
    finished = by_type(ingest)["Job.finished"]["payload"]
    assert finished["Job.outcome"] == "failed"
    assert finished["TelemetryDeck.Error.id"].endswith("ExportFailed")
    assert "secret-canary-7f3a" not in str(ingest.accepted_signals)


def test_a_decorated_function_returns_its_value_each_call(
    ingest: IngestServer, client: TelemetryDeck
) -> None:
    @td_web.job("Import.users", client=client)
    def run(value: int) -> int:
        return value * 2

    assert [run(1), run(2)] == [2, 4]
    outcomes = [
        s["payload"]["Job.outcome"]
        for s in ingest.accepted_signals
        if "Job.outcome" in s["payload"]
    ]
    assert outcomes == ["succeeded", "succeeded"]


def test_an_async_job(ingest: IngestServer, client: TelemetryDeck) -> None:
    @td_web.job("Async.sync", client=client)
    async def sync_feeds() -> str:
        td_web.current().signal("Feeds.synced")
        await asyncio.sleep(0)
        return "done"

    assert asyncio.run(sync_feeds()) == "done"
    assert set(by_type(ingest)) == {"Job.started", "Feeds.synced", "Job.finished"}


def test_an_unreachable_ingest_never_changes_the_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = TelemetryDeck(app_id=APP_ID, endpoint=f"http://127.0.0.1:{free_port()}", **SLOW)
    try:
        with td_web.job("Nightly.export", client=down, flush_timeout=0.2):
            result = "exported"
        assert result == "exported"
        assert "ended before its signals were delivered" in caplog.text
    finally:
        down.close(0)


def test_without_any_client_the_job_runs_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TELEMETRYDECK_APP_ID", raising=False)
    monkeypatch.setattr(td_web.jobs, "_default_client", None)
    with caplog.at_level(logging.WARNING, logger="td_web"), td_web.job("Nightly.export"):
        value = 42
    assert value == 42
    assert "td_web.job() has no client" in caplog.text


def test_a_script_configured_by_the_environment_delivers_before_exit(
    ingest: IngestServer,
) -> None:
    # A cron script: the client comes from TELEMETRYDECK_* variables, the process then ends.
    script = textwrap.dedent(
        """
        import td_web

        @td_web.job("Cron.cleanup")
        def main():
            return 0

        main()
        """
    )
    env = {
        "TELEMETRYDECK_APP_ID": APP_ID,
        "TELEMETRYDECK_ENDPOINT": ingest.url,
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert [s["type"] for s in ingest.accepted_signals] == ["Job.started", "Job.finished"]


def test_strict_mode_raises_a_bad_signal_in_the_job_like_the_client(
    ingest: IngestServer,
) -> None:
    strict = TelemetryDeck(app_id=APP_ID, salt="pepper", endpoint=ingest.url, strict=True, **SLOW)
    try:
        with td_web.job("Strict.job", client=strict):
            with pytest.raises(td_web.SignalError):
                td_web.current().signal("")
            with pytest.raises(td_web.SignalError):
                td_web.current().purchase(9.99, currency_code="EURO")
            td_web.current().signal("Strict.fine", {"Strict.key": "value"})
    finally:
        strict.close(1)
    sent = by_type(ingest)
    assert set(sent) == {"Job.started", "Strict.fine", "Job.finished"}
    assert sent["Strict.fine"]["payload"]["Strict.key"] == "value"
    assert sent["Strict.fine"]["sessionID"] == sent["Job.started"]["sessionID"]


def test_strict_mode_keeps_the_user_and_session_carried_from_the_request(
    ingest: IngestServer,
) -> None:
    from td_web._context import helper_for

    strict = TelemetryDeck(app_id=APP_ID, salt="pepper", endpoint=ingest.url, strict=True, **SLOW)
    carried = {"sessionID": "carried-session", "clientUser": "ab" * 32}
    try:
        helper_for(strict, carried, "test").signal("Carried.strict")
        helper_for(strict, carried, "test").signal("Carried.override", client_user="someone")
        assert strict.flush(5)
    finally:
        strict.close(1)
    sent = by_type(ingest)
    assert sent["Carried.strict"]["clientUser"] == "ab" * 32
    assert sent["Carried.strict"]["sessionID"] == "carried-session"
    assert sent["Carried.override"]["clientUser"] not in ("ab" * 32, "someone")
    assert sent["Carried.override"]["sessionID"] == "carried-session"


def test_current_signal_in_a_job_carries_a_callable_default_payload_like_client_signal(
    ingest: IngestServer,
) -> None:
    given: list[object] = []

    def properties(request: object) -> dict[str, str]:
        given.append(request)
        return {"Tenant.plan": "pro"}

    td = TelemetryDeck(
        app_id=APP_ID, salt="pepper", endpoint=ingest.url, default_payload=properties, **SLOW
    )
    try:
        with td_web.job("Nightly.export", client=td):
            td_web.current().signal("Export.rows", {"Export.kind": "full"})
        td.signal("Direct.call")
        td.flush(5)
    finally:
        td.close(1)

    sent = by_type(ingest)
    assert sent["Export.rows"]["payload"]["Tenant.plan"] == "pro"
    assert sent["Export.rows"]["payload"]["Export.kind"] == "full"
    assert sent["Direct.call"]["payload"]["Tenant.plan"] == "pro"
    # No request in a job: the callable is given None, as on the bare client.
    assert given and all(request is None for request in given)
