"""The middleware through Django's real handlers: the test clients, WSGIHandler, ASGIHandler."""

from __future__ import annotations

import asyncio
import io
import pickle
import threading
from http.cookies import Morsel
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from conftest import (
    FORWARDED_CLIENTS,
    assert_forwarded_address_counts_only_when_trusted,
    cyclic_garbage,
)
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, AsyncRequestFactory, Client, RequestFactory, override_settings
from td_django_helpers import APP_ID, MIDDLEWARE, telemetry_settings

from td_web import Telemetry
from td_web.django import TelemetryDeckMiddleware
from td_web.django.cookies import RawMorsel
from td_web.testing import CapturedSignals

COOKIE_FLAGS = "; Max-Age=1800; Path=/; SameSite=Lax; HttpOnly"


# -- sync and async ---------------------------------------------------------------------------


def test_sync_request_sends_session_and_page_view(td_signals: CapturedSignals) -> None:
    response = Client().get("/", HTTP_USER_AGENT="Mozilla/5.0", HTTP_ACCEPT_LANGUAGE="de-DE")

    assert response.status_code == 200
    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView"]
    page_view = td_signals.one("pageView")
    assert page_view["appID"] == APP_ID
    assert page_view["payload"]["HTTP.route"] == "/"
    assert page_view["payload"]["url"] == "http://testserver/"
    assert page_view["payload"]["TelemetryDeck.UserPreference.region"] == "DE"
    assert "td_session" in response.cookies


async def test_async_request_under_asgi(td_signals: CapturedSignals) -> None:
    response = await AsyncClient().get("/async/", headers={"user-agent": "Mozilla/5.0"})

    assert response.status_code == 200
    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView"]
    assert td_signals.one("pageView")["payload"]["HTTP.route"] == "/async/"
    assert "td_session" in response.cookies


def test_custom_signal_from_a_view_shares_the_request_session(
    td_signals: CapturedSignals,
) -> None:
    Client().post("/checkout/")

    checkout = td_signals.one("Checkout.completed")
    request_signal = td_signals.one("HTTP.request")
    assert checkout["payload"]["Cart.items"] == "3"
    assert checkout["payload"]["floatValue"] == 19.99
    assert checkout["sessionID"] == request_signal["sessionID"]
    assert request_signal["payload"]["HTTP.method"] == "POST"


def test_current_returns_the_request_telemetry_inside_a_view(
    td_signals: CapturedSignals,
) -> None:
    response = Client().get("/current/")

    assert response.content == b"True"
    assert (
        td_signals.one("Current.used")["sessionID"] == td_signals.one("HTTP.request")["sessionID"]
    )


async def test_async_view_custom_signal(td_signals: CapturedSignals) -> None:
    await AsyncClient().get("/async/checkout/")

    assert td_signals.one("Checkout.completed")["payload"]["Cart.items"] == "1"


def test_middleware_marks_itself_async_only_for_an_async_chain() -> None:
    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert iscoroutinefunction(TelemetryDeckMiddleware(async_view))
    assert not iscoroutinefunction(TelemetryDeckMiddleware(sync_view))


async def test_asgi_requests_start_on_the_event_loop_thread(td_signals: CapturedSignals) -> None:
    """Django adapts a sync-only middleware by running it in a worker thread; ours must not be.

    The EXCLUDE callable runs inside the middleware's request start, so it sees its thread."""
    threads: list[int] = []

    def exclude(request: HttpRequest) -> bool:
        threads.append(threading.get_ident())
        return False

    with override_settings(TELEMETRYDECK=telemetry_settings(EXCLUDE=exclude)):
        await AsyncClient().get("/async/")

    assert threads == [threading.get_ident()]


def test_each_client_reuses_one_telemetry_client(td_signals: CapturedSignals) -> None:
    """Every handler builds its own middleware chain; they must share one TelemetryDeck."""
    from td_web.django import get_web_telemetry

    Client().get("/")
    first = get_web_telemetry()
    Client().get("/")

    assert get_web_telemetry() is first
    assert td_signals.types().count("pageView") == 2


# -- the session cookie -----------------------------------------------------------------------


def _wsgi_environ(path: str, **extra: Any) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(extra)
    return environ


def _call_wsgi(path: str, **extra: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"], started["headers"] = status, headers

    result = WSGIHandler()(_wsgi_environ(path, **extra), start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return started["status"], started["headers"], body


def _set_cookies(headers: list[tuple[str, str]]) -> list[str]:
    return [value.strip() for name, value in headers if name.lower() == "set-cookie"]


def test_wsgi_set_cookie_header_is_exactly_the_cores(td_signals: CapturedSignals) -> None:
    status, headers, _ = _call_wsgi("/")

    assert status == "200 OK"
    [cookie] = _set_cookies(headers)
    assert cookie.startswith("td_session=")
    assert cookie.endswith(COOKIE_FLAGS)
    assert "Secure" not in cookie and "expires" not in cookie.lower()


def test_wsgi_https_cookie_is_secure(td_signals: CapturedSignals) -> None:
    _, headers, _ = _call_wsgi("/", **{"wsgi.url_scheme": "https", "SERVER_PORT": "443"})

    [cookie] = _set_cookies(headers)
    assert cookie.endswith(COOKIE_FLAGS + "; Secure")
    assert td_signals.one("pageView")["payload"]["scheme"] == "https"


def test_cookie_value_matches_the_core_header(td_signals: CapturedSignals) -> None:
    """The morsel Django serialises is the core's own header, byte for byte."""
    response = Client().get("/", secure=True)

    morsel = response.cookies["td_session"]
    assert isinstance(morsel, RawMorsel)
    assert morsel.output(header="").strip() == response.wsgi_request.telemetry.set_cookie_header()


def test_cookie_morsel_carries_the_headers_attributes(td_signals: CapturedSignals) -> None:
    """Code reading the morsel's attributes finds the ones the header carries."""
    morsel = Client().get("/", secure=True).cookies["td_session"]

    assert (morsel["max-age"], morsel["path"], morsel["samesite"]) == ("1800", "/", "Lax")
    assert morsel["httponly"] is True and morsel["secure"] is True
    assert morsel["expires"] == "" and morsel["domain"] == ""
    assert morsel.key == "td_session" and morsel.coded_value == morsel.value


def test_cookie_morsel_copies_keep_the_header(td_signals: CapturedSignals) -> None:
    morsel = Client().get("/").cookies["td_session"]

    copied = morsel.copy()

    assert copied.output() == morsel.output()
    assert (copied.key, copied.value, dict(copied)) == (morsel.key, morsel.value, dict(morsel))


def test_cookie_set_again_outside_td_web_is_sent_as_set(td_signals: CapturedSignals) -> None:
    """A middleware outside td_web calling ``set_cookie`` with td_web's name changes the
    morsel td_web added: the response then carries that middleware's value and flags."""
    outer = "td_django_testsite.middleware.ResetsTheSessionCookie"
    with override_settings(MIDDLEWARE=[outer, *MIDDLEWARE]):
        _, headers, _ = _call_wsgi("/")
        response = Client().get("/")

    [cookie] = _set_cookies(headers)
    assert cookie.startswith("td_session=reset-outside-td-web; expires=")
    assert "; Max-Age=60;" in cookie and cookie.endswith("; Secure")
    restored = pickle.loads(pickle.dumps(response.cookies))
    assert restored["td_session"].output() == response.cookies["td_session"].output()
    assert restored["td_session"].value == "reset-outside-td-web"


def test_cookie_merged_outside_td_web_is_sent_as_merged(td_signals: CapturedSignals) -> None:
    """``morsel |= {...}`` (dict's merge: Morsel has no ``__ior__``, so ``update()`` is not
    called) changes the attributes of td_web's morsel: its output follows them."""
    outer = "td_django_testsite.middleware.MergesIntoTheSessionCookie"
    with override_settings(MIDDLEWARE=[outer, *MIDDLEWARE]):
        _, headers, _ = _call_wsgi("/")
        response = Client().get("/")

    for cookie in (_set_cookies(headers)[0], response.cookies["td_session"].output(header="")):
        assert "; Path=/shop" in cookie and "; SameSite=Strict" in cookie
        assert "Path=/;" not in cookie and "SameSite=Lax" not in cookie
        assert "; Max-Age=1800" in cookie and "HttpOnly" in cookie


def test_cookie_morsel_changed_as_a_dict_drops_the_cores_header(
    td_signals: CapturedSignals,
) -> None:
    """Every dict mutator Morsel leaves as it is makes the morsel an ordinary one again."""
    for change in (
        lambda morsel: morsel.pop("samesite"),
        lambda morsel: morsel.__delitem__("samesite"),
        lambda morsel: morsel.popitem(),
        lambda morsel: morsel.clear(),
    ):
        morsel = Client().get("/").cookies["td_session"]
        change(morsel)
        # Morsel's own OutputString: the attributes as they are now, not td_web's header.
        assert morsel.output(header="").strip() == Morsel.OutputString(morsel)


async def test_asgi_set_cookie_header(td_signals: CapturedSignals) -> None:
    messages: list[dict[str, Any]] = []

    bodies = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()  # the client stays connected; Django cancels this wait
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/async/",
        "raw_path": b"/async/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 443),
    }
    await ASGIHandler()(scope, receive, send)

    start = messages[0]
    cookies = [value.decode() for name, value in start["headers"] if name.lower() == b"set-cookie"]
    assert start["status"] == 200
    assert len(cookies) == 1 and cookies[0].endswith(COOKIE_FLAGS + "; Secure")
    assert td_signals.one("pageView")["payload"]["url"] == "https://testserver/async/"


def test_apps_own_cookies_are_kept(td_signals: CapturedSignals) -> None:
    _, headers, _ = _call_wsgi("/one-own-cookie/")

    cookies = _set_cookies(headers)
    assert len(cookies) == 2
    assert any(cookie.startswith("theme=dark") and "HttpOnly" in cookie for cookie in cookies)
    assert any(cookie.startswith("td_session=") for cookie in cookies)


def test_app_setting_td_session_itself_wins(td_signals: CapturedSignals) -> None:
    response = Client().get("/own-cookies/")

    assert response.cookies["td_session"].value == "set-by-the-app-itself-123456"
    assert response.cookies["theme"].value == "dark"


def test_returning_visitor_keeps_the_session_and_the_cookie_slides(
    td_signals: CapturedSignals,
) -> None:
    client = Client()
    first = client.get("/")
    second = client.get("/pages/about/")

    assert td_signals.types().count("TelemetryDeck.Session.started") == 1
    first_id, second_id = (s["sessionID"] for s in td_signals.of_type("pageView"))
    assert first_id == second_id
    assert second.cookies["td_session"].value == first.cookies["td_session"].value


def test_cookie_survives_pickling_for_the_cache_framework(td_signals: CapturedSignals) -> None:
    response = Client().get("/")
    header = response.cookies["td_session"].output(header="")

    restored = pickle.loads(pickle.dumps(response.cookies))

    assert restored["td_session"].output(header="") == header


def test_cookieless_mode_sets_no_cookie(td_signals: CapturedSignals) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(COOKIELESS=True)):
        response = Client().get("/")

    assert "td_session" not in response.cookies
    assert td_signals.one("pageView")["sessionID"]


# -- streaming --------------------------------------------------------------------------------


def test_streaming_response_is_recorded_when_the_body_ends(td_signals: CapturedSignals) -> None:
    response = Client().get("/stream/")

    assert "HTTP.request" not in td_signals.types()
    assert b"".join(response.streaming_content) == b"a,b\n1,2\n"  # type: ignore[arg-type]
    signal = td_signals.one("HTTP.request")
    assert signal["payload"]["HTTP.route"] == "/stream/"
    assert signal["payload"]["HTTP.statusCode"] == "200"


def test_streaming_response_closed_early_is_recorded_once(td_signals: CapturedSignals) -> None:
    response = Client().get("/stream/")
    iterator = iter(response.streaming_content)  # type: ignore[arg-type]
    next(iterator)
    response.close()  # what a server does when the client goes away

    assert len(td_signals.of_type("HTTP.request")) == 1


def test_streaming_failure_is_recorded_as_an_error(td_signals: CapturedSignals) -> None:
    response = Client().get("/stream-fails/")
    with pytest.raises(Exception, match="mid-stream"):
        b"".join(response.streaming_content)  # type: ignore[arg-type]

    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"
    error = td_signals.one("TelemetryDeck.Error.occurred")
    assert error["payload"]["TelemetryDeck.Error.id"].endswith("CheckoutFailed")


def test_wsgi_streaming_through_the_handler(td_signals: CapturedSignals) -> None:
    status, _, body = _call_wsgi("/stream/")

    assert (status, body) == ("200 OK", b"a,b\n1,2\n")
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/stream/"


def test_file_response_keeps_the_servers_file_wrapper(td_signals: CapturedSignals) -> None:
    """Wrapping a FileResponse's content would cost WSGI servers their sendfile path."""
    wrapped: list[Any] = []

    class FileWrapper:
        def __init__(self, filelike: Any, block_size: int) -> None:
            wrapped.append(filelike)
            self.filelike = filelike

        def __iter__(self) -> Any:
            return iter(lambda: self.filelike.read(4096), b"")

        def close(self) -> None:
            self.filelike.close()

    status, _, body = _call_wsgi("/file/", **{"wsgi.file_wrapper": FileWrapper})

    assert status == "200 OK" and len(body) == 10_000
    assert len(wrapped) == 1 and isinstance(wrapped[0], io.BytesIO)
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/file/"


async def test_async_streaming_response_is_recorded_when_the_body_ends(
    td_signals: CapturedSignals,
) -> None:
    response = await AsyncClient().get("/async/stream/")
    assert "HTTP.request" not in td_signals.types()

    chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[union-attr]

    assert b"".join(chunks) == b"a,b\n1,2\n"
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/async/stream/"


async def test_async_stream_cancelled_mid_body_is_recorded(td_signals: CapturedSignals) -> None:
    """Django cancels the response task when the client disconnects mid-body."""
    response = await AsyncClient().get("/async/stream-stalls/")
    iterator = response.streaming_content.__aiter__()  # type: ignore[union-attr]
    assert await iterator.__anext__() == b"first\n"
    task = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)  # the body is now waiting for its next chunk
    assert "HTTP.request" not in td_signals.types()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "200"
    assert "TelemetryDeck.Error.occurred" not in td_signals.types()


# -- not tracked ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("static_url", "media_url", "path"),
    [
        ("/assets/", "/media/", "/assets/app.css"),
        ("/static/", "/uploads/", "/uploads/avatar.png"),
    ],
)
def test_static_and_media_urls_are_excluded(
    td_signals: CapturedSignals, static_url: str, media_url: str, path: str
) -> None:
    with override_settings(STATIC_URL=static_url, MEDIA_URL=media_url):
        response = Client().get(path)
        Client().get("/")

    assert response.status_code == 404
    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView"]
    assert "td_session" not in response.cookies


def test_relative_static_url_under_a_script_prefix_is_excluded(
    td_signals: CapturedSignals,
) -> None:
    with override_settings(STATIC_URL="assets/", FORCE_SCRIPT_NAME="/shop"):
        _call_wsgi("/assets/app.css", SCRIPT_NAME="/shop")
        _call_wsgi("/pages/about/", SCRIPT_NAME="/shop")

    assert [s["payload"]["path"] for s in td_signals.of_type("pageView")] == ["/shop/pages/about/"]


def test_gpc_opt_out_sends_nothing_but_views_still_work(td_signals: CapturedSignals) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(RESPECT_GPC=True)):
        response = Client().post("/checkout/", headers={"Sec-GPC": "1"})

    assert response.status_code == 200
    assert td_signals.types() == []
    assert "td_session" not in response.cookies


def test_request_telemetry_is_a_telemetry_on_every_request(td_signals: CapturedSignals) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(ENABLED=False)):
        response = Client().get("/checkout/")

    assert isinstance(response.wsgi_request.telemetry, Telemetry)
    assert not response.wsgi_request.telemetry.active


def test_middleware_position_does_not_matter_for_the_view(td_signals: CapturedSignals) -> None:
    with override_settings(MIDDLEWARE=[*MIDDLEWARE[1:], MIDDLEWARE[0]]):
        response = Client().post("/checkout/")

    assert response.status_code == 200
    assert "Checkout.completed" in td_signals.types()


# -- behind a proxy -----------------------------------------------------------------------------


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), USE_X_FORWARDED_HOST=True
)
def test_proxy_settings_give_the_public_scheme_and_host(td_signals: CapturedSignals) -> None:
    response = Client().get(
        "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"}
    )

    assert response.cookies["td_session"].output().endswith("; Secure")
    assert td_signals.one("pageView")["payload"]["url"] == "https://example.com/"


def test_without_proxy_settings_forwarded_headers_are_ignored(
    td_signals: CapturedSignals,
) -> None:
    Client().get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"})

    assert td_signals.one("pageView")["payload"]["url"] == "http://testserver/"


def test_trusted_proxies_read_the_forwarded_headers(td_signals: CapturedSignals) -> None:
    """With ``TRUSTED_PROXIES`` (td_web's own rule, Django's proxy settings unset) the
    forwarding headers reach the core; without it they are not even read."""
    forwarded = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "example.com",
    }
    with override_settings(TELEMETRYDECK=telemetry_settings(TRUSTED_PROXIES=1)):
        Client().get("/", headers=forwarded)
    Client().get("/", headers=forwarded)

    urls = [signal["payload"]["url"] for signal in td_signals.of_type("pageView")]
    assert urls == ["https://example.com/", "http://testserver/"]


def test_the_forwarded_address_counts_only_with_trusted_proxies(
    td_signals: CapturedSignals, begun_forwarding: list[tuple[str | None, ...]]
) -> None:
    """One rule in the core (``WebTelemetry.reads_forwarding``): with ``TRUSTED_PROXIES`` the
    forwarded client address decides the (cookieless) session; without it the forwarding
    headers are not even read into the view, so nothing of them is queued."""
    for trusted in (1, None):
        options = telemetry_settings(COOKIELESS=True, TRUSTED_PROXIES=trusted)
        with override_settings(TELEMETRYDECK=options):
            for address in FORWARDED_CLIENTS:
                Client().get("/", headers={"X-Forwarded-For": address})

    assert_forwarded_address_counts_only_when_trusted(begun_forwarding, td_signals)


def test_a_disallowed_host_is_djangos_400_not_our_error(
    td_signals: CapturedSignals, caplog: pytest.LogCaptureFixture
) -> None:
    response = Client().get("/", headers={"Host": "evil.example"})

    assert response.status_code == 400
    assert td_signals.one("HTTP.request")["payload"]["host"] == "evil.example"
    assert not [r for r in caplog.records if r.name == "td_web" and r.levelno >= 40]


# -- the middleware on its own ----------------------------------------------------------------


def test_middleware_with_a_request_factory_request(td_signals: CapturedSignals) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        request.telemetry.signal("Factory.used")  # type: ignore[attr-defined]
        return HttpResponse("<p>ok</p>")

    request = RequestFactory().get("/somewhere/", HTTP_REFERER="https://search.example/?q=tea")
    response = TelemetryDeckMiddleware(view)(request)

    assert response.status_code == 200
    assert td_signals.types() == ["Factory.used", "TelemetryDeck.Session.started", "pageView"]
    page_view = td_signals.one("pageView")["payload"]
    assert page_view["referer"] == "https://search.example/"
    assert "HTTP.route" not in page_view  # the view was called without a resolver


async def test_middleware_with_an_async_request_factory_request(
    td_signals: CapturedSignals,
) -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("<p>ok</p>")

    middleware = TelemetryDeckMiddleware(view)
    response = await middleware(AsyncRequestFactory().get("/async-factory/"))

    assert response.status_code == 200
    assert td_signals.one("pageView")["payload"]["path"] == "/async-factory/"


def test_session_from_djangos_own_session_cookie(td_signals: CapturedSignals, alice: Any) -> None:
    with override_settings(TELEMETRYDECK=telemetry_settings(SESSION_FROM_COOKIE="sessionid")):
        client = Client()
        client.force_login(alice)
        first = client.get("/")
        client.get("/pages/about/")

    assert "td_session" not in first.cookies
    page_views = td_signals.of_type("pageView")
    assert len({s["sessionID"] for s in page_views}) == 1
    assert client.cookies["sessionid"].value not in str(td_signals.all)


def test_a_tracked_request_leaves_no_reference_cycle_behind(td_signals: CapturedSignals) -> None:
    """request.telemetry holds the helper and the helper held the request (and a user lookup
    bound to it): every request was left to the cyclic garbage collector. The helper lets go
    of them once its record is queued."""
    # Django's WSGI handler as a server calls it (the test client keeps cycles of its own),
    # td_web alone (auth's lazy request.user is a cycle of Django's own).
    with override_settings(MIDDLEWARE=MIDDLEWARE[:1]):
        _call_wsgi("/")
    with override_settings(MIDDLEWARE=MIDDLEWARE[:1]), cyclic_garbage() as garbage:
        for _ in range(3):
            assert _call_wsgi("/", HTTP_USER_AGENT="Mozilla/5.0")[0].startswith("200")
    assert [type(o).__name__ for o in garbage if isinstance(o, Telemetry)] == []
    assert td_signals.types().count("pageView") == 4


@pytest.mark.parametrize(
    ("setting", "header"),
    [({"RESPECT_GPC": True}, {"HTTP_SEC_GPC": "1"}), ({"SAMPLE_RATE": 0.000001}, {})],
    ids=["gpc", "sampled-out"],
)
def test_a_request_that_sends_nothing_leaves_no_reference_cycle_behind(
    td_signals: CapturedSignals, setting: dict[str, Any], header: dict[str, str]
) -> None:
    settings = {"MIDDLEWARE": MIDDLEWARE[:1], "TELEMETRYDECK": telemetry_settings(**setting)}
    with override_settings(**settings):
        _call_wsgi("/", **header)
    with override_settings(**settings), cyclic_garbage() as garbage:
        for _ in range(3):
            assert _call_wsgi("/", HTTP_USER_AGENT="Mozilla/5.0", **header)[0].startswith("200")
    assert [type(o).__name__ for o in garbage if isinstance(o, Telemetry)] == []
    assert td_signals.types() == []


def test_an_excluded_request_leaves_no_reference_cycle_behind(
    td_signals: CapturedSignals,
) -> None:
    """An excluded request (``exclude_paths``) sends nothing by itself but keeps its helper
    for custom signals: the helper holds the request weakly once the request ends, so
    request -> helper -> request does not wait for the cyclic garbage collector."""
    settings = {
        "MIDDLEWARE": MIDDLEWARE[:1],
        "TELEMETRYDECK": telemetry_settings(EXCLUDE_PATHS=["/pages/"]),
    }
    with override_settings(**settings):
        _call_wsgi("/pages/about/")
    with override_settings(**settings), cyclic_garbage() as garbage:
        for _ in range(3):
            status = _call_wsgi("/pages/about/", HTTP_USER_AGENT="Mozilla/5.0")[0]
            assert status.startswith("200")
    assert [type(o).__name__ for o in garbage if isinstance(o, Telemetry)] == []
    assert [type(o).__name__ for o in garbage if isinstance(o, HttpRequest)] == []
    assert td_signals.types() == []
