"""The "users in control" core pieces on their own: the sampling decision agrees across worker
processes, trusted-proxy parsing, before_send accounting, and settings validation. (Every option
is also tested through each adapter in test_*_control.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer

from td_web import ConfigurationError, RequestView, TelemetryDeck
from td_web._web import WebTelemetry
from td_web._web.proxies import TrustedProxies
from td_web._web.sampling import SessionSampler, session_fraction

#: Fixed session tokens (cookie values), so that both processes see the same sessions.
TOKENS = [f"visitor-token-{i:04d}-abcdefgh" for i in range(40)]

WORKER = textwrap.dedent(
    """
    import json, os, sys
    from td_web import RequestView
    from td_web._web import WebTelemetry

    tokens = json.loads(sys.argv[2])
    web = WebTelemetry.from_options({
        "app_id": os.environ["APP_ID"], "salt": "shared-salt", "endpoint": sys.argv[1],
        "sample_rate": 0.5, "default_payload": {"Worker.pid": str(os.getpid())},
        "handle_sigterm": False,
    })
    for token in tokens:
        for path in ("/a", "/b"):
            view = RequestView(method="GET", scheme="https", host="shop.example", path=path,
                               user_agent="Mozilla/5.0", cookies=f"td_session={token}")
            helper = web.begin(view, None)
            helper.signal("Custom.done")
            helper.finish(200, "text/html", path)
    assert web.client.flush(10)
    """
)


@pytest.mark.slow
def test_two_worker_processes_keep_and_drop_the_same_sessions(ingest: IngestServer) -> None:
    env = {**os.environ, "APP_ID": APP_ID}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, ingest.url, json.dumps(TOKENS)],
            env={**env, "PYTHONHASHSEED": str(seed)},  # hash() differs: the decision must not
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        assert worker.wait(60) == 0
    sessions: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for signal in ingest.accepted_signals:
        sessions[signal["payload"]["Worker.pid"]][signal["sessionID"]].add(signal["type"])
    assert len(sessions) == 2, "both workers sent"
    first, second = sessions.values()
    assert set(first) == set(second), "both processes kept exactly the same sessions"
    expected = sum(session_fraction(token) < 0.5 for token in TOKENS)
    assert len(first) == expected
    assert 0 < expected < len(TOKENS)
    for types in (*first.values(), *second.values()):
        assert types == {"pageView", "Custom.done"}


def test_the_decision_is_monotonic_in_the_rate() -> None:
    for token in TOKENS:
        kept = [SessionSampler.keeps(token, rate) for rate in (0.0, 0.1, 0.3, 0.6, 0.9, 1.0)]
        assert kept == sorted(kept), "kept at some rate means kept at every higher rate"
    assert not SessionSampler.keeps(TOKENS[0], 0.0)
    assert SessionSampler.keeps(TOKENS[0], 1.0)


def _view(**fields: Any) -> RequestView:
    return RequestView(method="GET", scheme="http", host="app:8000", path="/", **fields)


@pytest.mark.parametrize(
    ("proxies", "peer", "headers", "expected"),
    [
        # By address: the first hop from the right that is not a trusted proxy.
        (["10.0.0.0/8"], "10.0.0.2", {"forwarded_for": "1.2.3.4, 10.0.0.9"}, "1.2.3.4"),
        # Forged by the client itself: the leftmost entry is not believed.
        (["10.0.0.0/8"], "10.0.0.2", {"forwarded_for": "6.6.6.6, 1.2.3.4"}, "1.2.3.4"),
        # Untrusted peer: nothing is read.
        (["10.0.0.0/8"], "203.0.113.9", {"forwarded_for": "1.2.3.4"}, "203.0.113.9"),
        # By hop count.
        (1, "10.0.0.2", {"forwarded_for": "6.6.6.6, 1.2.3.4"}, "1.2.3.4"),
        (2, "10.0.0.2", {"forwarded_for": "6.6.6.6, 1.2.3.4"}, "6.6.6.6"),
        (3, "10.0.0.2", {"forwarded_for": "1.2.3.4"}, "10.0.0.2"),  # too few hops: ignored
        # RFC 7239, IPv6 with a port, quoted.
        ("10.0.0.2", "10.0.0.2", {"forwarded": 'for="[2001:db8::7]:443"'}, "2001:db8::7"),
        # Junk in the header: ignored.
        (1, "10.0.0.2", {"forwarded_for": "<script>"}, "10.0.0.2"),
    ],
)
def test_trusted_proxies_pick_the_client(
    proxies: Any, peer: str, headers: dict[str, str], expected: str
) -> None:
    trusted = TrustedProxies.parse(proxies)
    assert trusted is not None
    view = _view(client_addr=peer, **headers)
    trusted.apply(view)
    assert view.client_addr == expected


def test_forwarded_scheme_and_host_only_when_sane() -> None:
    trusted = TrustedProxies.parse(1)
    assert trusted is not None
    view = _view(
        client_addr="10.0.0.2",
        forwarded_for="1.2.3.4",
        forwarded_proto="gopher",
        forwarded_host="evil.example/<x>",
    )
    trusted.apply(view)
    assert (view.scheme, view.host) == ("http", "app:8000")


def test_before_send_drops_and_failures_are_counted(ingest: IngestServer) -> None:
    def hook(signal: dict[str, Any]) -> Any:
        if signal["type"] == "Keep.me":
            return signal
        if signal["type"] == "Drop.me":
            return None
        raise ValueError("nope")

    with TelemetryDeck(
        APP_ID, endpoint=ingest.url, before_send=hook, before_send_errors="drop"
    ) as client:
        for signal_type in ("Keep.me", "Drop.me", "Break.me", "Break.me"):
            client.signal(signal_type)
        assert client.flush(10)
        stats = client.stats()
        assert stats.dropped["before_send"] == 1
        assert stats.dropped["before_send_error"] == 2
        assert client.before_send_failures == 2
        # Dropped on purpose, not broken: nothing is counted as "invalid" on top.
        assert "invalid" not in stats.dropped
        client.signal("")  # a type nothing can be made of: that one is invalid
        assert client.flush(10)
        assert client.stats().dropped["invalid"] == 1
    assert [s["type"] for s in ingest.accepted_signals] == ["Keep.me"]


def test_a_float_value_before_send_changes_is_sent_the_same_in_both_places(
    ingest: IngestServer,
) -> None:
    # floatValue travels in the payload and at the top level, the same number in both
    # (README, "What goes on the wire"): the hook's payload decides it.
    def hook(signal: dict[str, Any]) -> Any:
        payload = dict(signal["payload"])
        if signal["type"] == "Rounded":
            payload["floatValue"] = round(payload["floatValue"])
        elif signal["type"] == "Unpriced":
            del payload["floatValue"]
        else:
            payload["floatValue"] = 5  # a value the signal did not have
        return {**signal, "payload": payload}

    with TelemetryDeck(APP_ID, endpoint=ingest.url, before_send=hook) as client:
        client.signal("Rounded", float_value=19.99)
        client.signal("Unpriced", float_value=3.5)
        client.signal("Priced")
        assert client.flush(10)
    sent = {signal["type"]: signal for signal in ingest.accepted_signals}
    assert sent["Rounded"]["payload"]["floatValue"] == sent["Rounded"]["floatValue"] == 20.0
    assert "floatValue" not in sent["Unpriced"]["payload"]
    assert "floatValue" not in sent["Unpriced"]
    assert sent["Priced"]["payload"]["floatValue"] == sent["Priced"]["floatValue"] == 5.0


def test_callable_default_payload_on_the_bare_client_gets_none(ingest: IngestServer) -> None:
    given: list[object] = []

    def properties(request: object) -> dict[str, str]:
        given.append(request)
        return {"Deploy.region": "eu", "Own.key": "default"}

    with TelemetryDeck(APP_ID, endpoint=ingest.url, default_payload=properties) as client:
        client.signal("Job.done", {"Own.key": "mine"})
        assert client.flush(10)
    (signal,) = ingest.accepted_signals
    assert signal["payload"]["Deploy.region"] == "eu"
    assert signal["payload"]["Own.key"] == "mine"
    assert given == [None]


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("sample_rate", float("nan"), "sample_rate must be a number from 0.0 to 1.0, got nan"),
        ("sample_rate", -0.1, "got -0.1"),
        ("sample_rate", True, "got True"),
        ("exclude_status", "4xx", None),  # a single class is fine
        ("exclude_status", [700], "got 700"),
        ("trusted_proxies", True, "got True"),
        ("trusted_proxies", 99, "between 1 and 32, got 99"),
        ("trusted_proxies", ["10.0.0.0/8", 5], "got 5"),
        ("consent_cookie_name", "bad name", "got 'bad name'"),
    ],
)
def test_settings_are_validated_at_start_up(name: str, value: Any, fragment: str | None) -> None:
    options = {"app_id": APP_ID, "endpoint": "http://127.0.0.1:9", name: value}
    if fragment is None:
        WebTelemetry.from_options(options).client.close(0)
        return
    with pytest.raises(ConfigurationError, match=name) as raised:
        WebTelemetry.from_options(options)
    assert fragment in str(raised.value)


def test_async_callables_are_refused_at_start_up() -> None:
    async def sampler(view: object) -> float:
        return 1.0

    class AsyncProperties:
        async def __call__(self, request: object) -> dict[str, str]:
            return {}

    for name, value in (("sampler", sampler), ("default_payload", AsyncProperties())):
        with pytest.raises(ConfigurationError, match=f"{name} must be a plain function"):
            WebTelemetry.from_options(
                {"app_id": APP_ID, "endpoint": "http://127.0.0.1:9", name: value}
            )


def test_opt_out_outside_a_request_still_records_the_choice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from starlette.responses import Response

    import td_web

    response = Response("bye")
    td_web.opt_out(response)
    cookies = response.headers.getlist("set-cookie")
    assert any(c.startswith("td_consent=no;") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("td_session=") and "Max-Age=0" in c for c in cookies)
    # The shared out-of-request helper is not silenced: it still warns about misuse.
    td_web.current().signal("Outside.request")
    assert "outside a request handled by a td_web middleware" in caplog.text


def test_opt_out_on_something_that_is_not_a_response_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import td_web

    td_web.opt_out("not a response")
    assert "recording the opt-out on str failed" in caplog.text
