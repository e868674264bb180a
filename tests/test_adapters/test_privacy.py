"""Privacy, tested with canaries, once for every adapter: requests full of private values (a
signed-in user whose id or name is a canary, td_session, the framework's session and other
cookies, query strings, Referer queries, form and JSON bodies, credentials, an exception
message) go through Starlette (real ASGI calls), Django (its real WSGI and ASGI handlers) and
Flask (its test client), in each adapter's user and session modes; nothing of them may reach
the ingest server but salted hashes. The sites are in ``privacy_*.py``."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter

import pytest
from ingest_server import IngestServer
from privacy_canaries import (
    ALL_CANARIES,
    CANARY_VISIT_STATUSES,
    PLANTED,
    QUERY,
    SESSION_TOKEN,
    IngestWindow,
    assert_canary_visit_arrived,
    assert_no_canary,
    assert_the_error_message_was_sent,
    assert_the_search_finds,
    canary_request,
    everything_received,
    find_canaries,
)
from test_adapters import privacy_asgi, privacy_django, privacy_flask
from test_adapters.privacy_site import EVERY_SIGNAL, OpenSite

from td_web import hash_client_user
from td_web._hashing import derive_session_id

#: Each adapter (Django once per handler) with its modes.
ADAPTERS: dict[str, tuple[OpenSite, list[str]]] = {
    "asgi": (privacy_asgi.open_site, list(privacy_asgi.MODES)),
    "django-wsgi": (privacy_django.opener("wsgi"), list(privacy_django.MODES)),
    "django-asgi": (privacy_django.opener("asgi"), list(privacy_django.MODES)),
    "flask": (privacy_flask.open_site, list(privacy_flask.MODES)),
}
SITES = [pytest.param(open_site, id=name) for name, (open_site, _) in ADAPTERS.items()]
MODES = [
    pytest.param(open_site, mode, id=f"{name}-{mode}")
    for name, (open_site, modes) in ADAPTERS.items()
    for mode in modes
]


@pytest.mark.parametrize(("open_site", "mode"), MODES)
def test_no_canary_reaches_the_ingest_server(
    open_site: OpenSite, mode: str, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    with open_site(ingest, mode) as site:
        visit = site.canary_visit()
        window = IngestWindow(ingest)  # the canary requests' signals, not a login's
        statuses = [site.send(request) for request in visit.requests]
        assert site.flush()

    assert statuses == CANARY_VISIT_STATUSES
    signals = window.signals
    assert_canary_visit_arrived(signals, hash_client_user(visit.user_id, site.salt))
    if visit.token_sessions is not None:
        sessions = Counter(s["sessionID"] for s in signals)
        least = len(signals) if visit.token_sessions == EVERY_SIGNAL else visit.token_sessions
        assert sessions[derive_session_id(SESSION_TOKEN, site.salt)] >= least

    assert_no_canary(everything_received(ingest), (*ALL_CANARIES, *visit.secrets))
    assert [r.getMessage() for r in caplog.records if r.name == "td_web" and r.levelno >= 40] == []


@pytest.mark.parametrize("open_site", SITES)
def test_error_messages_are_sent_when_enabled_and_the_search_sees_them(
    open_site: OpenSite, ingest: IngestServer
) -> None:
    """The opt-in that sends exception messages proves the search sees a canary that leaks."""
    with open_site(ingest, send_error_messages=True) as site:
        assert site.send(canary_request("/boom/")) == 500
        assert site.flush()

    assert_the_error_message_was_sent(ingest)


@pytest.mark.parametrize("open_site", SITES)
def test_the_search_finds_a_canary_a_view_sends_on_purpose(
    open_site: OpenSite, ingest: IngestServer
) -> None:
    """Positive control: a custom signal carrying a canary is caught."""
    with open_site(ingest) as site:
        assert site.send(canary_request("/planted/")) == 200
        assert site.flush()

    assert ingest.accepted_signals
    assert_the_search_finds(PLANTED, ingest)


@pytest.mark.parametrize(
    ("sent", "form"),
    [
        pytest.param(QUERY, "raw", id="raw"),
        pytest.param(QUERY.lower(), "raw", id="other-case"),
        pytest.param("x" + QUERY.replace("-", "%2D"), "url-decoded", id="percent-encoded"),
        pytest.param("".join(f"\\u{ord(c):04x}" for c in QUERY), "json strings", id="u-escaped"),
        pytest.param("CANARY-query-7f", "marker", id="cut-short"),
        pytest.param(base64.b64encode(QUERY.encode()).decode(), "base64", id="base64"),
        pytest.param(hashlib.sha256(QUERY.encode()).hexdigest(), "unsalted sha256", id="sha256"),
    ],
)
def test_the_search_sees_encoded_and_partial_canaries(sent: str, form: str) -> None:
    """The helper itself, on a body as the ingest server would receive it."""
    body = ('[{"type": "x", "payload": {"value": "' + sent + '"}}]').encode()

    leaks = find_canaries([body])

    assert any(form in leak.form for leak in leaks), leaks
    assert find_canaries([b'[{"type": "x", "payload": {"value": "clean"}}]']) == []
