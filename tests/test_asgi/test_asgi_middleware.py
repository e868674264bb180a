"""The middleware through real ASGI calls: pure ASGI pass-through, status and timing from
``send``, exceptions, client disconnects, the helper's three ways in, and cookies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from test_asgi.asgi_support import APP_ID, ASGIServer, LifespanServer, TestClient, http_scope

import td_web
from td_web._transport import http_library
from td_web.asgi import Telemetry, TelemetryDeckMiddleware
from td_web.testing import CapturedSignals

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()


class Boom(Exception):
    pass


# -- pure ASGI: scopes that are not http go through untouched --------------------------------


async def test_websocket_scopes_pass_through_untouched(td_signals: CapturedSignals) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope=scope, receive=receive, send=send, current=td_web.current())

    scope = {"type": "websocket", "path": "/ws", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        pass

    await TelemetryDeckMiddleware(app, app_id=APP_ID)(scope, receive, send)
    assert seen["scope"] is scope
    assert seen["receive"] is receive
    assert seen["send"] is send
    assert "state" not in scope
    assert not seen["current"].active
    assert td_signals.types() == []


async def test_lifespan_scope_and_messages_pass_through() -> None:
    received: list[Any] = []
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["scope"] = scope
        while True:
            message = await receive()
            received.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {"db": "pool"}}

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await TelemetryDeckMiddleware(app, app_id=APP_ID)(scope, receive, send)
    assert seen["scope"] is scope
    assert scope == {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {"db": "pool"}}
    assert received == ["lifespan.startup", "lifespan.shutdown"]
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


async def test_an_app_without_lifespan_support_still_works(td_signals: CapturedSignals) -> None:
    """A plain app that rejects lifespan: td_web answers for it (so the server tells it
    about shutdown), and requests are served."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("only http")
        await PlainTextResponse("plain")(scope, receive, send)

    middleware = TelemetryDeckMiddleware(app, app_id=APP_ID)
    server = LifespanServer()
    await middleware({"type": "lifespan"}, server.receive, server.send)
    assert server.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    http = ASGIServer()
    await http.run(middleware, http_scope("/"))
    assert http.status == 200
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "200"


async def test_an_app_that_returns_early_from_lifespan_still_hears_shutdown() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})  # and returns

    server = LifespanServer()
    await TelemetryDeckMiddleware(app, app_id=APP_ID)(
        {"type": "lifespan"}, server.receive, server.send
    )
    assert server.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_a_failing_lifespan_startup_still_fails() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        raise ConnectionError("no database")

    server = LifespanServer()
    with pytest.raises(ConnectionError):
        await TelemetryDeckMiddleware(app, app_id=APP_ID)(
            {"type": "lifespan"}, server.receive, server.send
        )
    assert server.sent == ["lifespan.startup.failed"]


async def test_per_request_state_lives_in_the_call(td_signals: CapturedSignals) -> None:
    """Concurrent requests interleave inside the app; each one's signal keeps its own path,
    status and session, and the middleware object gains no per-request attribute."""
    inside = 0
    all_inside = asyncio.Event()  # (asyncio.Barrier needs Python 3.11)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal inside
        if scope["path"].startswith("/req/"):
            inside += 1
            if inside == 20:
                all_inside.set()
            await all_inside.wait()  # every request is in flight at once
        status = 200 + int(scope["path"].rsplit("/", 1)[1])
        await PlainTextResponse("x", status_code=status)(scope, receive, send)

    middleware = TelemetryDeckMiddleware(app, app_id=APP_ID)
    await ASGIServer().run(middleware, http_scope("/warmup/0"))  # one-time static lookup
    before = dict(vars(middleware))
    td_signals.clear()

    async def one(index: int) -> ASGIServer:
        server = ASGIServer()
        await server.run(middleware, http_scope(f"/req/{index}"))
        return server

    servers = await asyncio.gather(*(one(i) for i in range(20)))
    assert vars(middleware) == before
    by_path = {p["path"]: p for p in td_signals.payloads("HTTP.request")}
    assert sorted(by_path) == sorted(f"/req/{i}" for i in range(20))
    for index in range(20):
        assert by_path[f"/req/{index}"]["HTTP.statusCode"] == str(200 + index)
    cookies = {server.header(b"set-cookie")[0] for server in servers}
    assert len(cookies) == 20  # each request started its own session
    sessions = {s["sessionID"] for s in td_signals.of_type("HTTP.request")}
    assert len(sessions) == 20


# -- status, content type and the end of the response ----------------------------------------


async def test_streaming_ends_with_the_last_body_message(td_signals: CapturedSignals) -> None:
    """The signal is queued when the final body message goes out, not at the first chunk and
    not after the background task that runs once the body is complete."""
    observed: dict[str, int] = {}

    async def events() -> AsyncIterator[str]:
        for index in range(3):
            observed[f"during chunk {index}"] = len(td_signals.of_type("HTTP.request"))
            yield f"data: {index}\n\n"

    def after_body() -> None:
        observed["background task"] = len(td_signals.of_type("HTTP.request"))

    async def sse(request: Request) -> Response:
        return StreamingResponse(
            events(), media_type="text/event-stream", background=BackgroundTask(after_body)
        )

    client = TestClient(
        TelemetryDeckMiddleware(Starlette(routes=[Route("/sse", sse)]), app_id=APP_ID)
    )
    response = client.get("/sse")
    assert response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert observed == {
        "during chunk 0": 0,
        "during chunk 1": 0,
        "during chunk 2": 0,
        "background task": 1,
    }
    payload = td_signals.one("HTTP.request")["payload"]
    assert payload["HTTP.statusCode"] == "200"
    assert payload["HTTP.route"] == "/sse"


async def test_status_and_content_type_come_from_send(td_signals: CapturedSignals) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": b"<p>", "more_body": True})
        await send({"type": "http.response.body", "body": b"</p>"})

    await ASGIServer().run(TelemetryDeckMiddleware(app, app_id=APP_ID), http_scope("/made"))
    # 201 with HTML to a GET is a page view, so the content type was read from the start.
    assert td_signals.one("pageView")["payload"]["HTTP.statusCode"] == "201"


# -- exceptions ---------------------------------------------------------------------------


async def test_exception_before_the_response_records_500_and_reraises(
    td_signals: CapturedSignals,
) -> None:
    raised = Boom("card declined")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise raised

    with pytest.raises(Boom) as caught:
        await ASGIServer().run(TelemetryDeckMiddleware(app, app_id=APP_ID), http_scope("/pay"))
    assert caught.value is raised
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"].endswith("Boom")
    assert "card declined" not in str(error)


@pytest.mark.parametrize("style", ["wrapped", "add_middleware"])
def test_starlette_error_page_still_reports_the_exception(
    style: str, td_signals: CapturedSignals
) -> None:
    """Starlette's ServerErrorMiddleware sends its 500 page and raises afterwards; outside it
    or inside it, the request reports 500 and the error."""

    def fail(request: Request) -> Response:
        raise Boom()

    app: Any = Starlette(routes=[Route("/fail", fail)])
    if style == "wrapped":
        app = TelemetryDeckMiddleware(app, app_id=APP_ID)
    else:
        app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/fail").status_code == 500
    payload = td_signals.one("HTTP.request")["payload"]
    assert payload["HTTP.statusCode"] == "500"
    assert payload["HTTP.route"] == "/fail"
    assert td_signals.one("TelemetryDeck.Error.occurred")["payload"]["HTTP.route"] == "/fail"


async def test_exception_mid_stream_reraises_with_one_signal(td_signals: CapturedSignals) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise Boom()

    with pytest.raises(Boom):
        await ASGIServer().run(TelemetryDeckMiddleware(app, app_id=APP_ID), http_scope("/s"))
    assert len(td_signals.of_type("HTTP.request")) == 1
    assert len(td_signals.of_type("TelemetryDeck.Error.occurred")) == 1


# -- client disconnects: exactly one signal, no error -----------------------------------------


async def test_disconnect_while_streaming_old_spec(td_signals: CapturedSignals) -> None:
    """ASGI spec < 2.4: Starlette listens for http.disconnect and stops the stream."""
    gate = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        yield b"first"
        await gate.wait()  # never set: only the disconnect ends this stream
        yield b"never"

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(endless())

    app = TelemetryDeckMiddleware(Starlette(routes=[Route("/ticker", endpoint)]), app_id=APP_ID)
    server = ASGIServer([{"type": "http.request", "body": b""}])  # then http.disconnect
    await server.run(app, http_scope("/ticker"))
    assert [m.get("body") for m in server.sent[1:]] == [b"first"]
    payload = td_signals.one("HTTP.request")["payload"]
    assert payload["HTTP.statusCode"] == "200"
    assert td_signals.of_type("TelemetryDeck.Error.occurred") == []


async def test_disconnect_while_streaming_new_spec(td_signals: CapturedSignals) -> None:
    """ASGI spec >= 2.4: the server's send raises OSError once the client is gone."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"chunk"

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks())

    app = TelemetryDeckMiddleware(Starlette(routes=[Route("/feed", endpoint)]), app_id=APP_ID)
    server = ASGIServer(disconnect_after_sends=2)
    scope = http_scope("/feed", asgi={"version": "3.0", "spec_version": "2.4"})
    try:
        await server.run(app, scope)
    except Exception:  # ClientDisconnect (older Starlette: the OSError in an ExceptionGroup)
        pass
    else:
        pytest.fail("the disconnect did not reach the application")
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "200"
    assert td_signals.of_type("TelemetryDeck.Error.occurred") == []


async def test_disconnect_before_the_response_reports_499(td_signals: CapturedSignals) -> None:
    async def long_poll(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the client leaves before anything was sent; the app just returns

    server = ASGIServer()
    await server.run(TelemetryDeckMiddleware(long_poll, app_id=APP_ID), http_scope("/poll"))
    assert server.sent == []
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "499"


async def test_cancelled_request_yields_one_signal(td_signals: CapturedSignals) -> None:
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        await asyncio.Event().wait()

    middleware = TelemetryDeckMiddleware(app, app_id=APP_ID)
    task = asyncio.ensure_future(ASGIServer().run(middleware, http_scope("/hang")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "200"
    assert td_signals.of_type("TelemetryDeck.Error.occurred") == []


async def test_request_cancelled_before_the_response_is_a_499(
    td_signals: CapturedSignals,
) -> None:
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    middleware = TelemetryDeckMiddleware(app, app_id=APP_ID)
    task = asyncio.ensure_future(ASGIServer().run(middleware, http_scope("/hang")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "499"
    assert td_signals.of_type("TelemetryDeck.Error.occurred") == []


# -- the helper: request.state.telemetry, td_web.current() ------------------------------------


def test_helper_is_request_state_telemetry_and_current(td_signals: CapturedSignals) -> None:
    seen: dict[str, Any] = {}

    async def checkout(request: Request) -> Response:
        helper = request.state.telemetry
        seen["same"] = helper is td_web.current()
        seen["type"] = type(helper)
        helper.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
        return PlainTextResponse("thanks")

    app = Starlette(routes=[Route("/checkout", checkout, methods=["POST"])])
    app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)
    TestClient(app).post("/checkout")
    assert seen == {"same": True, "type": Telemetry}
    custom = td_signals.one("Checkout.completed")
    assert custom["payload"]["Cart.items"] == "3"
    assert custom["payload"]["floatValue"] == 19.99
    assert custom["sessionID"] == td_signals.one("HTTP.request")["sessionID"]
    assert not td_web.current().active  # nothing leaks out of the request


async def test_helper_is_added_to_lifespan_state_without_clobbering_it() -> None:
    seen: dict[str, Any] = {}

    async def endpoint(request: Request) -> Response:
        seen["db"] = request.state.db
        seen["telemetry"] = request.state.telemetry
        return PlainTextResponse("ok")

    app = TelemetryDeckMiddleware(Starlette(routes=[Route("/", endpoint)]), app_id=APP_ID)
    lifespan_copy = {"db": "pool"}
    await ASGIServer().run(app, http_scope("/", state=lifespan_copy))
    assert seen["db"] == "pool"
    assert isinstance(seen["telemetry"], Telemetry)
    assert lifespan_copy["db"] == "pool"


async def test_helper_is_reachable_when_the_server_gives_no_state() -> None:
    seen: dict[str, Any] = {}

    async def endpoint(request: Request) -> Response:
        seen["telemetry"] = request.state.telemetry
        return PlainTextResponse("ok")

    app = TelemetryDeckMiddleware(Starlette(routes=[Route("/", endpoint)]), app_id=APP_ID)
    scope = http_scope("/")
    assert "state" not in scope
    await ASGIServer().run(app, scope)
    assert isinstance(seen["telemetry"], Telemetry)


def test_websocket_routes_work_and_send_nothing(td_signals: CapturedSignals) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("echo: " + await websocket.receive_text())
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)
    with TestClient(app).websocket_connect("/ws") as socket:
        socket.send_text("hi")
        assert socket.receive_text() == "echo: hi"
    assert td_signals.types() == []


def test_users_base_http_middleware_inside_keeps_route_stream_and_current(
    td_signals: CapturedSignals,
) -> None:
    """The application's own BaseHTTPMiddleware runs the endpoint in another task: the
    helper, the route and the end of the stream still reach td_web."""

    class Tagging(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: Any) -> Response:
            response: Response = await call_next(request)
            response.headers["x-tagged"] = "1"
            return response

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        td_web.current().signal("Stream.finished")
        yield b"b"

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks())

    app = Starlette(
        routes=[Route("/report/{year:int}", endpoint)], middleware=[Middleware(Tagging)]
    )
    app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)
    response = TestClient(app).get("/report/2024")
    assert (response.text, response.headers["x-tagged"]) == ("ab", "1")
    request = td_signals.one("HTTP.request")
    assert request["payload"]["HTTP.route"] == "/report/{year}"
    assert td_signals.one("Stream.finished")["sessionID"] == request["sessionID"]


# -- the session cookie -----------------------------------------------------------------------


async def test_set_cookie_is_added_without_touching_the_apps_headers(
    td_signals: CapturedSignals,
) -> None:
    shared_headers = [(b"content-type", b"text/plain")]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared_headers})
        await send({"type": "http.response.body", "body": b"ok"})

    server = ASGIServer()
    await server.run(TelemetryDeckMiddleware(app, app_id=APP_ID), http_scope("/"))
    assert shared_headers == [(b"content-type", b"text/plain")]
    (cookie,) = server.header(b"set-cookie")
    assert cookie.startswith(b"td_session=")
    assert b"HttpOnly" in cookie
    key = cookie.split(b";", 1)[0].decode()

    # The next request with that cookie continues the session: no new session signal.
    td_signals.clear()
    again = ASGIServer()
    await again.run(
        TelemetryDeckMiddleware(app, app_id=APP_ID), http_scope("/", headers=[("cookie", key)])
    )
    assert td_signals.types() == ["HTTP.request"]


async def test_an_apps_own_td_session_cookie_wins(td_signals: CapturedSignals) -> None:
    """A "forget me" endpoint that deletes td_web's cookie must not have it set again."""
    deletion = b'td_session=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain"), (b"set-cookie", deletion)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"forgotten"})

    server = ASGIServer()
    await server.run(TelemetryDeckMiddleware(app, app_id=APP_ID), http_scope("/forget-me"))
    assert server.header(b"set-cookie") == [deletion]
    assert td_signals.types() == ["TelemetryDeck.Session.started", "HTTP.request"]


async def test_headers_given_as_a_one_shot_iterable_survive(td_signals: CapturedSignals) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = iter([(b"content-type", b"text/html"), (b"x-kept", b"yes")])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<p>hi</p>"})

    server = ASGIServer()
    await server.run(
        TelemetryDeckMiddleware(app, app_id=APP_ID, session_from_cookie="sid"),
        http_scope("/", headers=[("cookie", "sid=abc")]),
    )
    assert server.header(b"x-kept") == [b"yes"]
    assert server.header(b"set-cookie") == []  # the site's cookie: none of td_web's own
    assert td_signals.one("pageView")["payload"]["HTTP.statusCode"] == "200"


async def test_async_client_end_to_end(td_signals: CapturedSignals) -> None:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello " + request.path_params["name"])

    app = TelemetryDeckMiddleware(Starlette(routes=[Route("/hello/{name}", hello)]), app_id=APP_ID)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        response = await client.get(
            "/hello/zoe?utm_source=news&email=zoe@example.com",
            headers={"referer": "https://search.example/q?x=1", "accept-language": "de-AT"},
        )
    assert response.text == "hello zoe"
    assert response.headers["set-cookie"].startswith("td_session=")
    payload = td_signals.one("HTTP.request")["payload"]
    assert payload["host"] == "shop.test"
    assert payload["path"] == "/hello/zoe"
    assert payload["HTTP.route"] == "/hello/{name}"
    assert payload["utm_source"] == "news"
    assert "zoe@example.com" not in str(payload)
    assert payload["referer"] == "https://search.example/q"
    assert payload["TelemetryDeck.UserPreference.region"] == "AT"
