"""The handle_sigterm option: a default SIGTERM first delivers what is queued, then ends the
process exactly as before (killed by SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import threading

from conftest import APP_ID, run_python
from ingest_server import IngestServer

from td_web._shutdown import exit_cleanly_on_sigterm

SCRIPT = """
import os, signal, sys, time
from td_web._web import WebTelemetry
signal.signal(signal.SIGTERM, signal.SIG_DFL)
web = WebTelemetry.from_options({{"app_id": "{app_id}", "endpoint": "{url}",
                                  "flush_interval": 3600, "handle_sigterm": {handle}}})
for i in range(25):
    web.client.signal("Before.sigterm", {{"i": i}})
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
sys.exit(3)  # never reached: SIGTERM ends the process either way
"""


def run(ingest: IngestServer, handle: bool) -> subprocess.CompletedProcess[str]:
    return run_python(SCRIPT.format(app_id=APP_ID, url=ingest.url, handle=handle))


def test_sigterm_delivers_queued_signals_then_ends_as_the_default_would(
    ingest: IngestServer,
) -> None:
    result = run(ingest, handle=True)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert sorted(int(s["payload"]["i"]) for s in ingest.accepted_signals) == list(range(25))


def test_without_the_handler_sigterm_loses_the_queue(ingest: IngestServer) -> None:
    """The control: this is what the option prevents."""
    result = run(ingest, handle=False)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert ingest.accepted_signals == []


def test_an_existing_handler_is_kept_and_only_the_main_thread_installs() -> None:
    before = signal.getsignal(signal.SIGTERM)

    def own(signum: int, frame: object) -> None:
        pass

    try:
        signal.signal(signal.SIGTERM, own)
        assert exit_cleanly_on_sigterm() is False
        assert signal.getsignal(signal.SIGTERM) is own
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        results: list[bool] = []
        thread = threading.Thread(target=lambda: results.append(exit_cleanly_on_sigterm()))
        thread.start()
        thread.join()
        assert results == [False]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_during_a_flush_still_ends_the_process(ingest: IngestServer) -> None:
    """The handler runs on the main thread, which may be waiting inside flush() at that moment
    (an atexit flush, a management command's td.flush()): it must not hang on its own lock."""
    code = f"""
import os, signal
from td_web._web import WebTelemetry
signal.signal(signal.SIGTERM, signal.SIG_DFL)
web = WebTelemetry.from_options({{"app_id": "{APP_ID}", "endpoint": "{ingest.url}",
                                  "flush_interval": 3600}})
web.client.signal("Before.sigterm")
sender = web.client._sender
with sender._settled:  # where flush() waits
    os.kill(os.getpid(), signal.SIGTERM)
"""
    result = run_python(code)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert [s["type"] for s in ingest.accepted_signals] == ["Before.sigterm"]
