"""Process life under a pre-forking server: every worker delivers its own signals at shutdown,
and what the master queued before forking is sent once, by the master."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import APP_ID, environment_without_telemetrydeck, run_python
from ingest_server import IngestServer, free_port

from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

HERE = Path(__file__).parent

pytestmark = pytest.mark.slow


def test_gunicorn_preload_every_worker_delivers_and_nothing_is_doubled(
    ingest: IngestServer,
) -> None:
    port = free_port()
    env = environment_without_telemetrydeck()
    env.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_ENDPOINT=ingest.url)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "preload_app:app",
            "--preload",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(HERE),
            "--graceful-timeout",
            "20",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 60
        while len(served) < 3:
            assert time.monotonic() < deadline, f"saw workers {dict(served)}"
            try:
                # A new connection each time, so the kernel spreads them over the workers.
                response = httpx.get(
                    f"http://127.0.0.1:{port}/pid", headers={"Connection": "close"}, timeout=5
                )
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            served[response.text] += 1
        assert ingest.accepted_signals == []  # the flush interval is an hour
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, output
    signals = ingest.accepted_signals
    from_workers = Counter(s["payload"]["worker"] for s in signals if s["type"] == "Worker.served")
    assert from_workers == served
    assert [s["type"] for s in signals].count("Master.started") == 1


# uWSGI forks its workers with the C library's fork() and by default runs no Python fork hook
# in them (its py-call-osafterfork is off). These children are forked the same way.
_FORK_IN_C = """
import ctypes, os, sys
fork_in_c = ctypes.PyDLL(None).fork  # PyDLL: called holding the GIL, as uWSGI's fork
fork_in_c.restype = ctypes.c_int
"""


def test_a_child_forked_in_c_while_the_rules_compile_loads_them_itself() -> None:
    """The parent's warm-up thread holds the rules' load lock at the fork; that thread does
    not exist in the child, which must not wait for it forever (its sender thread would)."""
    result = run_python(
        _FORK_IN_C
        + """
import signal
from td_web._web import device

device._load_lock.acquire()  # as the warm-up thread does while it compiles
pid = fork_in_c()
if pid == 0:
    signal.alarm(20)  # a child stuck on the parent's lock is killed, not waited for
    parser = device._shared_parser()
    os._exit(0 if parser is not None else 3)
_, status = os.waitpid(pid, 0)
print("child:", os.waitstatus_to_exitcode(status))
"""
    )
    assert "child: 0" in result.stdout, result.stdout + result.stderr


def test_a_child_forked_in_c_under_uwsgi_never_reuses_the_parents_session_tokens() -> None:
    result = run_python(
        _FORK_IN_C
        + """
import types
sys.modules["uwsgi"] = types.ModuleType("uwsgi")  # what uWSGI puts in the processes it runs
from td_web._web import sessions

pool = sessions.TokenPool()
pool.take()  # the block is drawn: 63 tokens wait in the parent's pool
read, write = os.pipe()
pid = fork_in_c()
if pid == 0:
    os.write(write, pool.take().encode())
    os._exit(0)
os.waitpid(pid, 0)
print("child's token is the parent's next:", os.read(read, 100).decode() == pool.take())
"""
    )
    assert "child's token is the parent's next: False" in result.stdout, (
        result.stdout + result.stderr
    )
