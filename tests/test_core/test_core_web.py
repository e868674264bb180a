"""Request telemetry in the core, through the framework-neutral request view."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import APP_ID

import td_web
from td_web import ConfigurationError, RequestView
from td_web._hashing import derive_session_id
from td_web._web import WebTelemetry
from td_web._web.payload import campaign_parameters, locale_keys, referer_parts
from td_web._web.routes import normalize_route
from td_web.testing import CapturedSignals, capture

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


_built: list[WebTelemetry] = []


def make_web(**options: Any) -> WebTelemetry:
    web = WebTelemetry.from_options(
        {"app_id": APP_ID, "salt": "pepper", "endpoint": "http://127.0.0.1:9", **options}
    )
    _built.append(web)
    return web


@pytest.fixture(autouse=True)
def _close_built_clients() -> Iterator[None]:
    """Each client a test built here is closed after it (its sender would otherwise retry the
    unreachable endpoint until a garbage collection happened to end it)."""
    yield
    while _built:
        client = _built.pop().client
        type(client).close(client, 0)  # the real one, where a test replaced it to spy on it


def view(path: str = "/", **fields: Any) -> RequestView:
    values: dict[str, Any] = {
        "method": "GET",
        "scheme": "https",
        "host": "shop.example",
        "path": path,
        "user_agent": BROWSER,
    }
    values.update(fields)
    return RequestView(**values)


def handle(
    web: WebTelemetry,
    request: RequestView,
    status: int = 200,
    content_type: str | None = "text/html; charset=utf-8",
    route: str | None = None,
    error: BaseException | None = None,
) -> td_web.Telemetry:
    telemetry = web.begin(request, native=request)
    token = telemetry.activate()
    try:
        if error is not None:
            telemetry.record_exception(error)
        telemetry.finish(status, content_type, route)
    finally:
        telemetry.deactivate(token)
    return telemetry


@pytest.fixture
def signals() -> Iterator[CapturedSignals]:
    with capture() as captured:
        yield captured


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/items/<int:item_id>", "/items/{item_id}"),
        ("/items/{item_id:int}", "/items/{item_id}"),
        (r"^items/(?P<item_id>\d+)$", "/items/{item_id}"),
        ("items/<int:item_id>/", "/items/{item_id}/"),
        ("/files/<path:rest>", "/files/{rest}"),
        ("/static/{path:path}", "/static/{path}"),
        (r"api/^items/(?P<pk>[^/.]+)/$", "/api/items/{pk}/"),
        (r"^items/(?P<pk>[^/.]+)\.(?P<format>[a-z0-9]+)/?$", "/items/{pk}.{format}/"),
        (r"en/^blog/(\d{4})/$", "/en/blog/{param}/"),
        (r"^(?P<choice>(a|b))/z$", "/{choice}/z"),
        ("", "/"),
        ("^$", "/"),
        ("/sub/<name>", "/sub/{name}"),
    ],
)
def test_route_templates_are_normalised(template: str, expected: str) -> None:
    assert normalize_route(template) == expected


def test_request_signal_payload(signals: CapturedSignals) -> None:
    web = make_web()
    handle(
        web,
        view(
            "/items/7",
            method="POST",
            query_string="utm_source=news&utm_medium=mail&token=SECRET&ref=hn&src=x&source=y",
            referer="https://other.example/page?q=SECRET",
            accept_language="de-CH,de;q=0.9,en;q=0.8",
        ),
        status=201,
        content_type="application/json",
        route="/items/<int:item_id>",
    )
    request = signals.one("HTTP.request")
    payload = request["payload"]
    assert payload["HTTP.method"] == "POST"
    assert payload["HTTP.statusCode"] == "201"
    assert payload["HTTP.route"] == "/items/{item_id}"
    assert payload["path"] == "/items/7"
    assert payload["host"] == "shop.example"
    assert payload["scheme"] == "https"
    assert payload["url"] == "https://shop.example/items/7"
    assert payload["referer"] == "https://other.example/page"
    assert payload["utm_source"] == "news"
    assert payload["utm_medium"] == "mail"
    assert payload["ref"] == "hn"
    assert payload["src"] == "x"
    assert payload["source"] == "y"
    assert payload["TelemetryDeck.RunContext.locale"] == "de-CH"
    assert payload["TelemetryDeck.UserPreference.language"] == "de"
    assert payload["TelemetryDeck.UserPreference.region"] == "CH"
    assert re.fullmatch(r"\d+\.\d{3}", payload["TelemetryDeck.Signal.durationInSeconds"])
    assert isinstance(payload["floatValue"], float)
    assert "SECRET" not in repr(signals.all)
    assert "token" not in payload


def test_successful_html_get_is_a_page_view_with_navigation(signals: CapturedSignals) -> None:
    web = make_web()
    handle(web, view("/cart", referer="https://shop.example/products?id=1"), route="/cart")
    page = signals.one("pageView")["payload"]
    assert page["TelemetryDeck.Navigation.schemaVersion"] == "1"
    assert page["TelemetryDeck.Navigation.sourcePath"] == "/products"
    assert page["TelemetryDeck.Navigation.destinationPath"] == "/cart"
    assert page["TelemetryDeck.Navigation.identifier"] == "/products -> /cart"


def test_page_view_from_another_site_has_an_empty_source(signals: CapturedSignals) -> None:
    handle(make_web(), view("/landing", referer="https://search.example/?q=x"))
    page = signals.one("pageView")["payload"]
    assert page["TelemetryDeck.Navigation.sourcePath"] == ""
    assert page["TelemetryDeck.Navigation.identifier"] == " -> /landing"


@pytest.mark.parametrize(
    ("method", "status", "content_type"),
    [
        ("POST", 200, "text/html"),
        ("GET", 302, "text/html"),
        ("GET", 200, "application/json"),
        ("GET", 404, "text/html"),
        ("GET", 200, None),
    ],
)
def test_everything_else_is_an_http_request(
    method: str, status: int, content_type: str | None, signals: CapturedSignals
) -> None:
    handle(make_web(), view("/x", method=method), status=status, content_type=content_type)
    assert signals.types()[-1] == "HTTP.request"
    assert "TelemetryDeck.Navigation.identifier" not in signals.all[-1]["payload"]


def test_signal_names_are_configurable_and_can_be_switched_off(signals: CapturedSignals) -> None:
    web = make_web(page_view_signal="Web.page", request_signal=None, session_started_signal=None)
    handle(web, view("/"))
    handle(web, view("/api", method="POST"), content_type="application/json")
    assert signals.types() == ["Web.page"]


def test_no_route_means_no_route_key(signals: CapturedSignals) -> None:
    handle(make_web(), view("/missing"), status=404, route=None)
    assert "HTTP.route" not in signals.one("HTTP.request")["payload"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.css",
        "/media/a.png",
        "/favicon.ico",
        "/robots.txt",
        "/.well-known/x",
        "/health",
        "/healthz/",
        "/readyz",
        "/ping",
    ],
)
def test_default_exclusions(path: str, signals: CapturedSignals) -> None:
    handle(make_web(), view(path))
    assert signals.types() == []


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_head_and_options_are_not_tracked(method: str, signals: CapturedSignals) -> None:
    handle(make_web(), view("/", method=method))
    assert signals.types() == []


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "facebookexternalhit/1.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0",
        "GPTBot/1.0",
        "UptimeRobot/2.0",
    ],
)
def test_bots_are_not_tracked(agent: str, signals: CapturedSignals) -> None:
    handle(make_web(), view("/", user_agent=agent))
    assert signals.types() == []


@pytest.mark.parametrize("agent", [BROWSER, "curl/8.5.0", "python-httpx/0.28", None])
def test_people_and_developer_tools_are_tracked(
    agent: str | None, signals: CapturedSignals
) -> None:
    handle(make_web(session_started_signal=None), view("/", user_agent=agent))
    assert signals.types() == ["pageView"]


def test_bots_can_be_tracked_on_request(signals: CapturedSignals) -> None:
    web = make_web(track_bots=True, session_started_signal=None)
    handle(web, view("/", user_agent="Googlebot/2.1"))
    assert signals.types() == ["pageView"]


def test_user_exclusions_by_prefix_regex_and_callable(signals: CapturedSignals) -> None:
    web = make_web(
        exclude_paths=["/admin/"],
        exclude_patterns=[r"\.php$"],
        exclude=lambda request: request.path == "/secret",
        include_paths=["/health"],
        session_started_signal=None,
    )
    for path in ["/admin/users", "/wp-login.php", "/secret"]:
        handle(web, view(path))
    assert signals.types() == []
    handle(web, view("/health"))
    handle(web, view("/shop"))
    assert [s["payload"]["path"] for s in signals] == ["/health", "/shop"]


def test_bad_exclusion_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"exclude_patterns: '\(' is not a valid"):
        make_web(exclude_patterns=["("])
    with pytest.raises(ConfigurationError, match="exclude_paths entries must start with '/'"):
        make_web(exclude_paths=["admin"])
    with pytest.raises(ConfigurationError, match=r"unknown td_web setting.*exclude_path\b"):
        make_web(exclude_path=["/x"])


def test_a_raising_exclude_callable_is_logged_and_the_request_tracked(
    signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Any) -> bool:
        raise RuntimeError("bug in user code")

    handle(make_web(exclude=broken, session_started_signal=None), view("/"))
    assert signals.types() == ["pageView"]
    assert "the exclude callable raised" in caplog.text


def test_global_privacy_control_opt_out(signals: CapturedSignals) -> None:
    web = make_web(respect_gpc=True)
    telemetry = handle(web, view("/", gpc="1"))
    assert telemetry.set_cookie_header() is None
    token = telemetry.activate()
    try:
        assert td_web.current().signal("Custom.one") is False
    finally:
        telemetry.deactivate(token)
    handle(make_web(), view("/", gpc="1"))  # off by default
    assert signals.types() == ["TelemetryDeck.Session.started", "pageView"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", {"locale": "en-US", "language": "en", "region": "US"}),
        ("fr", {"locale": "fr", "language": "fr"}),
        ("zh-Hant-TW", {"locale": "zh-TW", "language": "zh", "region": "TW"}),
        ("es-419", {"locale": "es-419", "language": "es", "region": "419"}),
        ("*, de;q=0.5", {"locale": "de", "language": "de"}),
        ("en_GB", {"locale": "en-GB", "language": "en", "region": "GB"}),
        ("", {}),
        ("!!!,???", {}),
    ],
)
def test_accept_language_parsing(header: str, expected: dict[str, str]) -> None:
    keys = locale_keys(header)
    names = {
        "locale": "TelemetryDeck.RunContext.locale",
        "language": "TelemetryDeck.UserPreference.language",
        "region": "TelemetryDeck.UserPreference.region",
    }
    assert keys == {names[k]: v for k, v in expected.items()}


def test_campaign_parameters_and_referer_parts() -> None:
    assert campaign_parameters("utm_campaign=spring&utm_campaign=again&email=a@b.c") == {
        "utm_campaign": "spring"
    }
    assert campaign_parameters("") == {}
    assert referer_parts("https://Example.com:8443/a/b?c=d#e") == (
        "https",
        "example.com:8443",
        "/a/b",
    )
    assert referer_parts("android-app://com.google") is None
    assert referer_parts("http://[::1") is None


def test_new_visitor_gets_a_cookie_and_a_session_started(signals: CapturedSignals) -> None:
    web = make_web()
    telemetry = handle(web, view("/"))
    header = telemetry.set_cookie_header()
    assert header is not None
    name_value, *flags = header.split("; ")
    name, value = name_value.split("=", 1)
    assert name == "td_session"
    assert set(flags) == {"Max-Age=1800", "Path=/", "SameSite=Lax", "HttpOnly", "Secure"}
    assert signals.types() == ["TelemetryDeck.Session.started", "pageView"]
    session_id = signals[0]["sessionID"]
    assert session_id == derive_session_id(value, "pepper")
    assert value not in repr(signals.all)
    # The returning visitor keeps the session and starts no new one.
    signals.clear()
    again = handle(web, view("/next", cookies={"td_session": value}))
    assert signals.types() == ["pageView"]
    assert signals[0]["sessionID"] == session_id
    assert again.set_cookie_header() == header  # sliding expiry: re-sent every time


def test_cookie_flags_follow_settings_and_scheme() -> None:
    insecure = handle(make_web(), view("/", scheme="http")).set_cookie_header()
    assert insecure is not None
    assert "Secure" not in insecure
    custom = handle(
        make_web(
            session_cookie_name="visit",
            session_cookie_max_age=600,
            session_cookie_samesite="strict",
            session_cookie_domain="example.com",
            session_cookie_httponly=False,
            session_cookie_secure=True,
        ),
        view("/", scheme="http"),
    ).set_cookie_header()
    assert custom is not None
    assert custom.startswith("visit=")
    assert set(custom.split("; ")[1:]) == {
        "Max-Age=600",
        "Path=/",
        "Domain=example.com",
        "SameSite=Strict",
        "Secure",
    }


def test_forged_or_malformed_cookies_start_a_fresh_session(signals: CapturedSignals) -> None:
    web = make_web()
    for forged in ["", "short", "x" * 500, "bad;value", "../../etc/passwd", "é" * 20]:
        telemetry = handle(web, view("/", cookies={"td_session": forged}))
        header = telemetry.set_cookie_header()
        assert header is not None
        issued = header.split(";")[0].split("=", 1)[1]
        # A fresh key of td_web's own (24 URL-safe characters), never the forged value.
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", issued), issued
        assert forged not in issued if forged else issued != forged
    assert signals.types().count("TelemetryDeck.Session.started") == 6


# Forking while threads run is what this test is about (Python 3.12+ warns of it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_new_session_tokens_are_distinct_across_blocks_threads_and_forks() -> None:
    """New sessions draw tokens from a pool filled in blocks (a cheaper request path): every
    token is still one of td_web's own, never handed out twice, and a forked child (a
    pre-fork server's worker) never hands out what its parent's pool still held."""
    import os
    import threading

    from td_web._web.sessions import TokenPool, valid_token

    pool = TokenPool()
    drawn: list[str] = []

    def draw() -> None:
        drawn.extend(pool.take() for _ in range(300))  # several blocks of 64 per thread

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(drawn) == 1200 and len(set(drawn)) == 1200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", token) and valid_token(token) for token in drawn)
    if not hasattr(os, "fork"):
        return
    pool.take()  # the pool now holds the rest of a block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, " ".join(pool.take() for _ in range(64)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as child:
        child_tokens = set(child.read().split())
    parent_tokens = {pool.take() for _ in range(64)}
    assert len(child_tokens) == 64 and not child_tokens & parent_tokens


def test_raw_cookie_header_is_understood(signals: CapturedSignals) -> None:
    web = make_web()
    token = "AbCdEfGhIjKlMnOpQrStUvWx"
    handle(web, view("/", cookies=f"theme=dark; td_session={token}; other=1"))
    assert signals.types() == ["pageView"]
    assert signals[0]["sessionID"] == derive_session_id(token, "pepper")


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("td_session=AbCdEfGhIjKlMnOpQrStUvWx", True),
        ("a=1; td_session=AbCdEfGhIjKlMnOpQrStUvWx; b=2", True),
        ("a=1;td_session=AbCdEfGhIjKlMnOpQrStUvWx", True),  # no space: the regex's way
        ('td_session="AbCdEfGhIjKlMnOpQrStUvWx"', True),  # quoted
        # The first td_session cookie is the one read, even when a later one is a token.
        ("td_session=bad; td_session=AbCdEfGhIjKlMnOpQrStUvWx", False),
        ("xtd_session=1; td_session=AbCdEfGhIjKlMnOpQrStUvWx", True),
        ("td_session=AbCdEfGhIjKlMnOpQrStUvWx ; b=2", False),  # not a token: trailing space
        ("td_session=AbCdEfGhIjKlMnOpQrStUvWx\n", False),
    ],
)
def test_the_session_token_is_read_from_the_first_cookie_of_its_name(
    header: str, kept: bool
) -> None:
    """The request path reads a plainly spelled token with one regex search; every other
    spelling gives exactly what the general cookie reader and ``valid_token`` give."""
    telemetry = make_web().begin(view("/", cookies=header))
    set_cookie = telemetry.set_cookie_header()
    assert set_cookie is not None
    issued = set_cookie.split(";")[0].split("=", 1)[1]
    assert (issued == "AbCdEfGhIjKlMnOpQrStUvWx") is kept, issued


def test_a_retired_telemetry_closes_its_client_after_its_last_request() -> None:
    """The requests in flight are counted without a lock; ``retire`` still closes the client
    only once the last request that began with it has finished, and only once."""
    web = make_web()
    first, second = web.begin(view("/a")), web.begin(view("/b"))
    closes: list[float] = []
    web.client.close = lambda timeout=5.0: closes.append(timeout) or True  # type: ignore[method-assign]
    web.retire(1.5)
    first.finish(200)
    assert closes == []  # one request still in flight
    second.finish(200)
    for _ in range(500):  # the close runs on a thread of its own, not the request's
        if closes:
            break
        threading.Event().wait(0.01)
    assert closes == [1.5]
    web.retire(1.5)  # nothing in flight, but it has been closed already
    assert closes == [1.5]
    idle = make_web()
    idle.client.close = lambda timeout=5.0: closes.append(timeout) or True  # type: ignore[method-assign]
    idle.retire(2.0)  # nothing in flight: closed at once, on the caller's thread
    assert closes == [1.5, 2.0]


def test_the_queued_size_is_the_stripped_views_size() -> None:
    """``for_queue`` counts the view's size as it strips it (the queue's byte budget asks for
    it at once): the same figure a recount of the stripped view gives."""
    for request in (
        view("/a", query_string="utm_source=x&q=secret", referer="https://a.example/"),
        view("/b", cookies="td_session=AbCdEfGhIjKlMnOpQrStUvWx", client_addr="10.1.2.3"),
        view("/" + "p" * 5000, user_agent="u" * 5000),
    ):
        queued = request.for_queue(keep_address=True)
        assert queued.queued_size is not None
        assert queued.approx_size() == queued._size()


def test_sessions_from_an_existing_cookie(signals: CapturedSignals) -> None:
    web = make_web(session_from_cookie="sessionid")
    first = handle(web, view("/", cookies={"sessionid": "django-session-key-123"}))
    assert first.set_cookie_header() is None
    handle(web, view("/two", cookies={"sessionid": "django-session-key-123"}))
    assert signals.types() == ["TelemetryDeck.Session.started", "pageView", "pageView"]
    assert len({s["sessionID"] for s in signals}) == 1
    assert "django-session-key-123" not in repr(signals.all)


def test_cookieless_sessions(signals: CapturedSignals) -> None:
    web = make_web(cookieless=True)
    a = handle(web, view("/", client_addr="203.0.113.7"))
    handle(web, view("/b", client_addr="203.0.113.7"))
    handle(web, view("/", client_addr="198.51.100.1"))
    assert a.set_cookie_header() is None
    assert signals.types().count("TelemetryDeck.Session.started") == 2
    page_views = signals.of_type("pageView")
    assert page_views[0]["sessionID"] == page_views[1]["sessionID"] != page_views[2]["sessionID"]
    assert "203.0.113.7" not in repr(signals.all)


def test_user_lookup_hashes_authenticated_users_and_anonymous_follow_the_session(
    signals: CapturedSignals,
) -> None:
    web = make_web(session_started_signal=None)
    telemetry = web.begin(view("/"), None, lambda request: "user-42")
    telemetry.finish(200, "text/html")
    anonymous = handle(web, view("/"))
    assert anonymous is not None
    known, unknown = signals
    assert known["clientUser"] == td_web.hash_client_user("user-42", "pepper")
    assert unknown["clientUser"] != known["clientUser"]
    assert len(unknown["clientUser"]) == 64


def test_client_user_override_callable_sees_the_native_request(signals: CapturedSignals) -> None:
    web = make_web(client_user=lambda request: f"from-{request.path}", session_started_signal=None)
    handle(web, view("/me"))
    assert signals[0]["clientUser"] == td_web.hash_client_user("from-/me", "pepper")


def test_error_signal_and_500(signals: CapturedSignals) -> None:
    class PaymentDeclinedError(Exception):
        pass

    web = make_web(session_started_signal=None)
    handle(
        web,
        view("/pay", method="POST"),
        status=200,
        route="/pay",
        error=PaymentDeclinedError("card 4111 1111 1111 1111 declined"),
    )
    error = signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"].endswith("PaymentDeclinedError")
    assert error["TelemetryDeck.Error.category"] == "thrown-exception"
    assert "TelemetryDeck.Error.message" not in error
    assert "4111" not in repr(signals.all)
    assert signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"


def test_error_message_only_when_opted_in(signals: CapturedSignals) -> None:
    web = make_web(send_error_messages=True, session_started_signal=None)
    handle(web, view("/"), error=ValueError("bad input"))
    error = signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"] == "ValueError"
    assert error["TelemetryDeck.Error.message"] == "bad input"


def test_exactly_one_signal_per_request(signals: CapturedSignals) -> None:
    web = make_web(session_started_signal=None)
    telemetry = web.begin(view("/"), None)
    telemetry.finish(200, "text/html")
    telemetry.finish(500, "text/html")
    assert signals.types() == ["pageView"]


def test_helper_signals_carry_session_user_and_defaults(signals: CapturedSignals) -> None:
    web = make_web(default_payload={"App.edition": "pro"}, session_started_signal=None)
    telemetry = web.begin(
        view("/checkout", cookies={"td_session": "A" * 24}), None, lambda request: 42
    )
    token = telemetry.activate()
    try:
        assert td_web.current() is telemetry
        td_web.current().signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
        telemetry.signal("Other.user", client_user="someone-else")
    finally:
        telemetry.deactivate(token)
    telemetry.finish(200, "text/html")
    checkout, other, page = signals
    assert checkout["type"] == "Checkout.completed"
    assert checkout["payload"]["Cart.items"] == "3"
    assert checkout["payload"]["floatValue"] == 19.99
    assert checkout["payload"]["App.edition"] == "pro"
    assert checkout["sessionID"] == page["sessionID"] == telemetry.session_id
    assert checkout["clientUser"] == td_web.hash_client_user("42", "pepper") == page["clientUser"]
    assert other["clientUser"] == td_web.hash_client_user("someone-else", "pepper")


def test_current_outside_a_request_sends_nothing_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    helper = td_web.current()
    assert helper.active is False
    assert helper.signal("Lost.signal") is False
    assert "outside a request" in caplog.text


def test_a_raising_user_lookup_is_logged_and_the_user_anonymous(
    signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    web = make_web(session_started_signal=None)

    def broken(request: object) -> str:
        raise RuntimeError("db down")

    telemetry = web.begin(view("/"), None, broken)
    telemetry.finish(200, "text/html")
    assert signals.types() == ["pageView"]
    assert "looking up the request's user failed" in caplog.text


def test_disabled_client_begins_untracked_requests(signals: CapturedSignals) -> None:
    web = WebTelemetry.from_options({"enabled": False})
    telemetry = handle(web, view("/"))
    assert telemetry.set_cookie_header() is None
    assert signals.types() == []


def test_client_option_reuses_a_client_and_refuses_mixed_options() -> None:
    client = td_web.TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9")
    try:
        assert WebTelemetry.from_options({"client": client}).client is client
        with pytest.raises(ConfigurationError, match="either client= or client options"):
            WebTelemetry.from_options({"client": client, "salt": "x"})
    finally:
        client.close(0)


def test_inert_helpers_say_why_at_debug_level_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="td_web")
    helper = make_web(respect_gpc=True).begin(view("/", gpc="1"))
    assert helper.signal("Custom.one") is False
    assert "dropped: the request opted out with Sec-GPC: 1" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert td_web.Telemetry.inert("misconfigured").active is False


def test_huge_user_agents_are_scanned_only_at_their_start(signals: CapturedSignals) -> None:
    web = make_web(session_started_signal=None)
    handle(web, view("/", user_agent="Googlebot/2.1 " + "x" * 20_000))
    handle(web, view("/", user_agent="x" * 20_000 + " Googlebot/2.1"))
    # The first is a bot; the second hides its marker past what is scanned: tracked.
    assert signals.types() == ["pageView"]


def test_the_queue_holds_no_exception_or_user_object(signals: CapturedSignals) -> None:
    """A failed request's traceback (and its frames' locals) must not wait in the queue, and
    the user object's __str__ runs on the request's thread, not the sender's."""
    import gc
    import threading
    import weakref

    from td_web._web.request_signals import RequestSignals

    class Big:
        pass

    class User:
        def __init__(self) -> None:
            self.thread = ""

        def __str__(self) -> str:
            self.thread = threading.current_thread().name
            return "user-7"

    web = make_web(session_started_signal=None, send_error_messages=True)
    user = User()
    telemetry = web.begin(view("/"), None, lambda request: user)
    alive: list[weakref.ref[Big]] = []

    def failing_view() -> None:
        big = Big()  # a local of the raising frame, reachable from the traceback
        alive.append(weakref.ref(big))
        raise RuntimeError("payment declined")

    try:
        failing_view()
    except RuntimeError as exc:
        telemetry.record_exception(exc)
    records: list[object] = []
    original = web.client.enqueue

    def keep(record: Any) -> bool:
        records.append(record)
        return original(record)

    web.client.enqueue = keep  # type: ignore[method-assign]
    telemetry.finish(500, "text/html")
    gc.collect()
    assert alive[0]() is None  # neither the helper nor the queued record kept the frame
    (record,) = records
    assert isinstance(record, RequestSignals)
    assert record.user == "user-7"
    assert user.thread == threading.current_thread().name
    assert signals.one("TelemetryDeck.Error.occurred")["payload"]["TelemetryDeck.Error.message"]


def test_a_payload_changed_after_signal_returns_is_sent_as_it_was(ingest: Any) -> None:
    client = td_web.TelemetryDeck(app_id=APP_ID, endpoint=ingest.url, flush_interval=3600)
    cart = {"items": 3, "skus": ["tea"]}
    client.signal("Checkout.completed", {"Cart": cart, "flat": "yes"})
    cart["items"] = 999
    cart["skus"].append("mug")
    assert client.flush(5)
    client.close(1)
    (signal,) = ingest.accepted_signals
    assert signal["payload"]["Cart.items"] == "3"
    assert signal["payload"]["Cart.skus"] == '["tea"]'


def test_cookieless_without_a_secret_refuses_to_start() -> None:
    """Keyed with a public constant, a sessionID from an address falls to a brute force."""
    with pytest.raises(ConfigurationError, match="cookieless=True needs a secret"):
        WebTelemetry.from_options(
            {"app_id": APP_ID, "endpoint": "http://127.0.0.1:9", "cookieless": True}
        )
    make_web(cookieless=True).client.close(0)  # with a salt
    WebTelemetry.from_options(  # with the framework's secret
        {"app_id": APP_ID, "endpoint": "http://127.0.0.1:9", "cookieless": True},
        framework_secret="django-insecure-key",
    ).client.close(0)


def test_strict_request_signals_raise_in_the_view_like_client_signals(
    signals: CapturedSignals,
) -> None:
    web = make_web(strict=True, session_started_signal=None)
    with pytest.raises(td_web.SignalError):
        web.client.signal("")
    telemetry = web.begin(view("/"), None)
    with pytest.raises(td_web.SignalError):
        telemetry.signal("")
    assert telemetry.signal("Checkout.completed", {"Cart.items": 2}) is True
    telemetry.finish(200, "text/html")
    assert signals.types() == ["Checkout.completed", "pageView"]
    assert signals[0]["sessionID"] == signals[1]["sessionID"] == telemetry.session_id


def test_the_adapter_settles_the_user_once_and_is_not_asked_after_the_response(
    signals: CapturedSignals,
) -> None:
    web = make_web(session_started_signal=None)
    asked: list[str] = []

    def lookup(request: object) -> str:
        asked.append("asked")
        return "user-42"

    telemetry = web.begin(view("/"), None, lookup)
    telemetry.signal("In.view")  # the request is alive: the lookup is asked
    telemetry.settle_user()  # the adapter's request context is about to end
    telemetry.signal("In.stream")
    telemetry.finish(200, "text/html")
    assert asked == ["asked", "asked"]
    expected = td_web.hash_client_user("user-42", "pepper")
    assert [s["clientUser"] for s in signals] == [expected, expected, expected]


def test_finish_takes_the_adapters_user_and_client_user_wins_over_it(
    signals: CapturedSignals,
) -> None:
    web = make_web(session_started_signal=None)
    web.begin(view("/"), None).finish(200, "text/html", user="adapter-user")
    overridden = make_web(client_user=lambda request: "from-option", session_started_signal=None)
    overridden.begin(view("/"), None).finish(200, "text/html", user="adapter-user")
    assert [s["clientUser"] for s in signals] == [
        td_web.hash_client_user("adapter-user", "pepper"),
        td_web.hash_client_user("from-option", "pepper"),
    ]


def test_finish_reports_the_error_it_is_given(signals: CapturedSignals) -> None:
    web = make_web(session_started_signal=None)
    web.begin(view("/"), None).finish(200, "text/html", error=RuntimeError("boom"))
    error, request = signals
    assert error["payload"]["TelemetryDeck.Error.id"] == "RuntimeError"
    assert request["payload"]["HTTP.statusCode"] == "500"


def test_the_user_lookup_is_given_the_adapters_request(signals: CapturedSignals) -> None:
    """One lookup function serves every request (no callable made per request): the helper
    hands it the request it holds."""
    web = make_web(session_started_signal=None)
    request = SimpleNamespace(user_id="user-7")
    given: list[object] = []

    def lookup(native: Any) -> object:
        given.append(native)
        return native.user_id

    telemetry = web.begin(view("/"), request, lookup)
    telemetry.finish(200, "text/html")
    assert given == [request]
    (page_view,) = signals.of_type("pageView")
    assert page_view["clientUser"] == td_web.hash_client_user("user-7", "pepper")
