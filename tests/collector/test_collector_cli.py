"""The td-web command: send, check, tail and collect, in-process and as a real subprocess."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import APP_ID

from td_web import hash_client_user
from td_web._transport import http_library
from td_web.cli import main
from td_web.collector import Collector, SignalStore

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

ANSI = re.compile(r"\x1b\[[0-9;]*m")

Signal = Callable[..., dict[str, Any]]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def good_options(collector: Collector) -> list[str]:
    """A configuration that passes every check, sending to ``collector``."""
    return [
        "--app-id",
        APP_ID,
        "--endpoint",
        collector.url,
        "--namespace",
        "com.example",
        "--salt",
        "pepper",
    ]


# -- send ------------------------------------------------------------------------------------


def test_send_delivers_one_signal_to_a_running_collector(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "send",
            "Example.cliSent",
            "Example.color=blue",
            "floatValue=2.5",
            "note=a=b",
            *good_options(collector),
            "--user",
            "alice",
            "--session",
            "session-1",
            "--test-mode",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "delivered" in out
    assert f"{collector.url}/v2/namespace/com.example/" in out
    (stored,) = collector.signals()
    assert stored.type == "Example.cliSent"
    assert stored.payload["Example.color"] == "blue"
    assert stored.payload["note"] == "a=b"
    assert stored.float_value == 2.5
    assert stored.client_user == hash_client_user("alice", "pepper")
    assert stored.session_id == "session-1"
    assert stored.is_test_mode is True
    assert stored.namespace == "com.example"
    assert collector.violations() == []


def test_send_reads_the_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_ENDPOINT", collector.url)
    monkeypatch.setenv("TELEMETRYDECK_TEST_MODE", "true")
    assert main(["send", "Example.fromEnvironment"]) == 0
    (stored,) = collector.signals()
    assert stored.app_id == APP_ID
    assert stored.is_test_mode is True


def test_send_to_an_unreachable_endpoint_fails(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code = main(["send", "Example.lost", "--app-id", APP_ID, "--endpoint", endpoint])
    err = capsys.readouterr().err
    assert code == 1
    assert "not delivered" in err
    assert "send_failed" in err


def test_send_that_the_server_rejects_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A body limit too small for any signal: the collector answers 413 and the client drops it.
    with Collector(tmp_path / "tiny.db", max_body_bytes=10) as tiny:
        code = main(["send", "Example.tooBig", "--app-id", APP_ID, "--endpoint", tiny.url])
        assert [v.rule for v in tiny.violations()] == ["body.too_large"]
    assert code == 1
    assert "not delivered" in capsys.readouterr().err


def test_send_without_an_app_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "Example.nowhere", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert "app id" in capsys.readouterr().err


def test_send_rejects_a_payload_entry_without_equals(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["send", "Example.x", "novalue", "--app-id", APP_ID])
    assert exit_info.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


# -- check -----------------------------------------------------------------------------------


def check_lines(out: str) -> dict[str, str]:
    """check's output as {check name: outcome}."""
    lines = {}
    for line in ANSI.sub("", out).splitlines():
        match = re.match(r"^(ok|warn|FAIL)\s+(app id|namespace|endpoint|salt|test mode)\s", line)
        if match:
            lines[match.group(2)] = match.group(1)
    return lines


def test_check_passes_for_a_good_configuration(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", *good_options(collector)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert check_lines(out) == {
        "app id": "ok",
        "namespace": "ok",
        "endpoint": "ok",
        "salt": "ok",
        "test mode": "ok",
    }
    assert "configuration looks good" in out
    # The reachability probe is a GET: it must not have sent (or been taken for) a signal.
    assert collector.signals() == []
    assert collector.violations() == []


def test_check_reads_the_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_ENDPOINT", collector.url)
    assert main(["check"]) == 0
    lines = check_lines(capsys.readouterr().out)
    assert lines["app id"] == "ok"
    assert lines["salt"] == "warn"  # no salt is worth knowing, not a failure


@pytest.mark.parametrize(
    ("arguments", "failing"),
    [
        (["--app-id", "not-a-uuid"], "app id"),
        ([], "app id"),
        (["--app-id", APP_ID, "--namespace", "bad namespace!"], "namespace"),
        (["--app-id", APP_ID, "--endpoint", "ftp://example.com"], "endpoint"),
    ],
)
def test_check_fails_for_a_bad_setting(
    collector: Collector,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    failing: str,
) -> None:
    if "--endpoint" not in arguments:
        arguments = [*arguments, "--endpoint", collector.url]
    code = main(["check", *arguments])
    out = capsys.readouterr().out
    assert code == 1
    lines = check_lines(out)
    assert lines[failing] == "FAIL", out
    assert [name for name, outcome in lines.items() if outcome == "FAIL"] == [failing]


def test_check_fails_for_an_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code = main(["check", "--app-id", APP_ID, "--endpoint", endpoint, "--timeout", "2"])
    out = capsys.readouterr().out
    assert code == 1
    assert check_lines(out)["endpoint"] == "FAIL"
    assert "not reachable" in out


def test_check_fails_for_a_bad_test_mode_setting(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_TEST_MODE", "perhaps")
    assert main(["check", "--app-id", APP_ID, "--endpoint", collector.url]) == 1
    assert check_lines(capsys.readouterr().out)["test mode"] == "FAIL"


# -- tail ------------------------------------------------------------------------------------


def test_tail_once_prints_recent_signals_from_the_api(
    collector: Collector, post: Any, signal_factory: Signal, capsys: pytest.CaptureFixture[str]
) -> None:
    post(
        [signal_factory(type=f"Example.number{i}", payload={"HTTP.route": "/r"}) for i in range(5)]
    )
    assert main(["tail", "--url", collector.url, "--once", "-n", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert [line.split()[1] for line in lines] == [
        "Example.number2",
        "Example.number3",
        "Example.number4",
    ]
    assert "HTTP.route=/r" in lines[0]
    assert "TelemetryDeck.SDK" not in lines[0]
    assert "\x1b[" not in lines[0]  # not a terminal: no colours


def test_tail_from_the_database_with_a_type_filter_and_violations(
    collector: Collector,
    post: Any,
    db_path: Path,
    signal_factory: Signal,
    capsys: pytest.CaptureFixture[str],
) -> None:
    post([signal_factory(type="Example.wanted"), signal_factory(type="Example.other")])
    post([signal_factory(payload={"payload": "x"})])
    code = main(
        ["tail", "--db", str(db_path), "--once", "--type", "Example.wanted", "--violations"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Example.wanted" in out
    assert "Example.other" not in out
    assert "REJECTED payload.reserved_key" in out


def test_tail_colours(
    collector: Collector,
    post: Any,
    signal_factory: Signal,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    post([signal_factory(type="Example.coloured")])
    main(["tail", "--url", collector.url, "--once", "--color", "always"])
    assert "\x1b[1;36mExample.coloured\x1b[0m" in capsys.readouterr().out

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    main(["tail", "--url", collector.url, "--once"])
    assert "\x1b[" not in capsys.readouterr().out


def test_tail_of_a_missing_database_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", "--db", str(tmp_path / "absent.db"), "--once"]) == 1
    assert "no collector database" in capsys.readouterr().err


def test_tail_of_an_unreachable_collector_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--url", f"http://127.0.0.1:{closed_port()}", "--once"]) == 1
    assert "cannot read" in capsys.readouterr().err


# -- demo: dispatched to td_web.demo, which is owned elsewhere ---------------------------------


def test_demo_is_handed_to_td_web_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []

    def demo_main(arguments: list[str]) -> int:
        received.append(arguments)
        return 7

    fake = types.ModuleType("td_web.demo")
    fake.__spec__ = importlib.machinery.ModuleSpec("td_web.demo", None)
    fake.main = demo_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "td_web.demo", fake)
    assert main(["demo", "--fast", "x"]) == 7
    assert received == [["--fast", "x"]]


def test_demo_without_the_module_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert main(["demo"]) == 2
    assert "not part of this td_web build" in capsys.readouterr().err


# -- real subprocesses -------------------------------------------------------------------------


def td_web_command() -> list[str]:
    """The installed td-web script beside this interpreter, else the module."""
    script = shutil.which("td-web", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "td_web.cli"]


class LineReader:
    """Reads a pipe on a thread so that tests can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                match = re.search(pattern, line)
                if match:
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} in {self.seen!r}")
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue


@pytest.fixture
def spawn() -> Iterator[Callable[..., tuple[subprocess.Popen[str], LineReader]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*arguments: str) -> tuple[subprocess.Popen[str], LineReader]:
        process = subprocess.Popen(
            [*td_web_command(), *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        assert process.stdout is not None
        return process, LineReader(process.stdout)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
def test_collect_serves_stores_and_stops_cleanly_on_sigterm(
    spawn: Any, db_path: Path, signal_factory: Signal
) -> None:
    process, output = spawn("collect", "--port", "0", "--db", str(db_path))
    url = output.wait_for(r"listening on (http://127\.0\.0\.1:\d+)").group(1)
    response = httpx.post(
        url + "/v2/",
        content=json.dumps([signal_factory(type="Example.viaSubprocess")]).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    bad = httpx.post(url + "/v2/", content=b"[]", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    output.wait_for(r"rejected a request \(HTTP 400.*body\.empty")

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    output.wait_for("collector stopped")
    store = SignalStore(db_path, must_exist=True)
    try:
        assert [s.type for s in store.signals()] == ["Example.viaSubprocess"]
    finally:
        store.close()


@pytest.mark.slow
def test_tail_follows_new_signals_as_they_arrive(
    spawn: Any, collector: Collector, post: Any, signal_factory: Signal
) -> None:
    post([signal_factory(type="Example.beforeTail")])
    process, output = spawn("tail", "--url", collector.url, "--interval", "0.1", "-n", "5")
    output.wait_for(r"Example\.beforeTail")
    post([signal_factory(type="Example.afterTail")])
    output.wait_for(r"Example\.afterTail")
    assert process.poll() is None  # still following


@pytest.mark.slow
def test_send_as_a_subprocess(spawn: Any, collector: Collector) -> None:
    process, output = spawn(
        "send", "Example.fromShell", "k=v", "--app-id", APP_ID, "--endpoint", collector.url
    )
    assert process.wait(timeout=30) == 0
    output.wait_for("delivered")
    assert collector.wait_for_signals(1)[0].type == "Example.fromShell"


def test_check_parses_every_other_setting_in_the_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_ENVIRONMENT", "staging")
    assert main(["check", *good_options(collector)]) == 0
    assert "ok    settings   1 other setting(s) valid" in ANSI.sub("", capsys.readouterr().out)

    monkeypatch.setenv("TELEMETRYDECK_HTTP_CLIENT", "requests")
    assert main(["check", *good_options(collector)]) == 1
    out = ANSI.sub("", capsys.readouterr().out)
    [failure] = [line for line in out.splitlines() if line.startswith("FAIL")]
    # Which option, which variable, which value, and why.
    assert failure.startswith("FAIL  http_client")
    assert "TELEMETRYDECK_HTTP_CLIENT" in failure
    assert "'requests'" in failure
    assert "1 check(s) failed" in out
