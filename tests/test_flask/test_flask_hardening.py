"""Privacy hardening (issue 13) through Flask's test client and the real ingest server: secrets
in paths, sessions keyed with a real secret, shared-cacheable responses, async user callables,
and one warning per kind of bad input."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import APP_ID
from flask import Flask, Response
from ingest_server import IngestServer

from td_web import ConfigurationError
from td_web._hashing import anonymous_client_user, derive_session_id
from td_web.flask import TelemetryDeck

SALT = "flask-hardening-salt"
#: The apps ``_app`` built during the current test.
_built: list[Flask] = []


@pytest.fixture(autouse=True)
def _close_each_client(ingest: IngestServer) -> Iterator[None]:
    """Each test closes the clients its apps built while its ingest still answers: a failing
    callable's traceback, kept in the captured log records, kept a client (its sender thread)
    alive after the test."""
    yield
    while _built:
        TelemetryDeck.state_for(_built.pop()).client.close(5)


def _app(ingest: IngestServer, td: TelemetryDeck | None = None, **options: Any) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "flask-secret-key"
    app.config["TELEMETRYDECK_HANDLE_SIGTERM"] = False

    @app.get("/")
    def home() -> str:
        return "<p>home</p>"

    @app.get("/files/<path:rest>")
    def files(rest: str) -> str:
        return "<p>file</p>"

    @app.get("/public")
    def public() -> Response:
        response = Response("<p>public</p>", content_type="text/html")
        response.headers["Cache-Control"] = "public, s-maxage=600"
        return response

    settings: dict[str, Any] = {
        "app_id": APP_ID,
        "salt": SALT,
        "endpoint": ingest.url,
        "flush_interval": 3600,
        **options,
    }
    (td or TelemetryDeck()).init_app(app, **{k: v for k, v in settings.items() if v is not None})
    _built.append(app)
    return app


def _flushed(app: Flask, ingest: IngestServer) -> list[dict[str, Any]]:
    """The page views that arrived (each new session also sends Session.started)."""
    assert TelemetryDeck.state_for(app).client.flush(30)
    return [s for s in ingest.accepted_signals if s["type"] == "pageView"]


def test_secrets_in_the_path_and_the_referer_never_reach_the_ingest(ingest: IngestServer) -> None:
    app = _app(ingest, redact_patterns=[r"^acct_"])
    leaky = "/files/x;jsessionid=SECRETJSESSION/bob@example.org/acct_77/reset%3Ftoken=TOKENSECRET"
    app.test_client().get(leaky, headers={"Referer": f"http://localhost{leaky}?q=SECRETQUERY"})
    [page_view] = _flushed(app, ingest)
    sent = repr(page_view)
    for secret in ("SECRETJSESSION", "bob@example.org", "acct_77", "TOKENSECRET", "SECRETQUERY"):
        assert secret not in sent
    payload = page_view["payload"]
    assert payload["path"] == "/files/x/{email}/{redacted}/reset"
    assert payload["TelemetryDeck.Navigation.sourcePath"] == payload["path"]


def test_an_invalid_redact_pattern_fails_init_app(ingest: IngestServer) -> None:
    with pytest.raises(ConfigurationError, match=r"redact_patterns: '\(unclosed' is not a valid"):
        _app(ingest, redact_patterns=["(unclosed"])


def test_cookieless_needs_a_secret_and_uses_secret_key_one_way(ingest: IngestServer) -> None:
    app = _app(ingest, salt=None, cookieless=True)
    response = app.test_client().get("/", environ_base={"REMOTE_ADDR": "198.51.100.23"})
    assert "td_session" not in response.headers.get("Set-Cookie", "")
    [page_view] = _flushed(app, ingest)
    assert page_view["sessionID"]
    bare = Flask(__name__)
    bare.config["TELEMETRYDECK_HANDLE_SIGTERM"] = False
    with pytest.raises(ConfigurationError, match="cookieless=True needs a secret"):
        TelemetryDeck().init_app(bare, app_id=APP_ID, cookieless=True)


def test_session_from_cookie_without_that_cookie_uses_td_session(ingest: IngestServer) -> None:
    app = _app(ingest, session_from_cookie="session")
    response = app.test_client().get("/")
    token = response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    [page_view] = _flushed(app, ingest)
    assert page_view["sessionID"] == derive_session_id(token, SALT)


def test_a_shared_cacheable_response_gets_no_session_cookie(ingest: IngestServer) -> None:
    app = _app(ingest)
    client = app.test_client()
    assert "td_session" not in client.get("/public").headers.get("Set-Cookie", "")
    assert "td_session" in client.get("/").headers.get("Set-Cookie", "")
    _flushed(app, ingest)


def test_async_user_callables_are_refused_at_start_up(ingest: IngestServer) -> None:
    async def client_user(request: Any) -> str:
        return "user-1"

    with pytest.raises(ConfigurationError, match="client_user must be a plain function"):
        _app(ingest, client_user=client_user)
    with pytest.raises(ConfigurationError, match="exclude must be a plain function"):
        _app(ingest, exclude=client_user)
    td = TelemetryDeck()
    with pytest.raises(ConfigurationError, match="user_loader must be a plain function"):

        @td.user_loader
        async def load_user() -> str:
            return "user-1"


def test_a_user_loader_returning_a_coroutine_counts_as_anonymous(ingest: IngestServer) -> None:
    async def lookup() -> str:
        return "user-1"

    td = TelemetryDeck()
    td.user_loader(lambda: lookup())  # a plain function that returns a coroutine anyway
    app = _app(ingest, td)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        app.test_client().get("/")
        app.test_client().get("/")
    for page_view in _flushed(app, ingest):
        # Main hashed the coroutine's text: a random "user" on every request.
        assert page_view["clientUser"] == anonymous_client_user(page_view["sessionID"], SALT)


def test_urls_of_many_lengths_log_one_warning(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(ingest)
    client = app.test_client()
    for length in range(4085, 4097):  # "http://localhost" + path: past the 4,096 limit
        client.get("/files/" + "a" * (length - len("/files/")))
    assert len(_flushed(app, ingest)) == 12
    cut = [r for r in caplog.records if r.levelno == logging.WARNING and "cut to" in r.message]
    assert len(cut) == 1  # main: one per length


def test_a_user_callable_failing_on_every_request_logs_once(
    ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    def client_user(request: Any) -> str:
        raise LookupError("no user store")

    app = _app(ingest, client_user=client_user, exclude=client_user)
    for _ in range(10):
        app.test_client().get("/")
    assert len(_flushed(app, ingest)) == 10  # tracked, as anonymous
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    # Main: a traceback per request and callable, twenty of them.
    assert sorted(r.getMessage().split(";")[0] for r in errors) == [
        "td_web: looking up the request's user failed",
        "td_web: the exclude callable raised",
    ]


def test_an_ipv6_server_without_a_host_header_is_sent_as_a_url(ingest: IngestServer) -> None:
    app = _app(ingest)
    app.test_client().get(
        "/", environ_overrides={"HTTP_HOST": "", "SERVER_NAME": "::1", "SERVER_PORT": "8000"}
    )
    [page_view] = _flushed(app, ingest)
    assert page_view["payload"]["host"] == "[::1]:8000"  # main: "::1:8000"
