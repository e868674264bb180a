"""Streamed responses: timed to the end of the body, exactly one signal however the body
ends (exhausted, closed early by a client that went away, or failing half-way)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, request, stream_with_context

import td_web
from td_web.testing import CapturedSignals

MakeApp = Callable[..., Flask]


def request_signals(signals: CapturedSignals) -> list[dict[str, Any]]:
    return [s for s in signals if s["type"] in ("pageView", "HTTP.request")]


def streaming_app(make_app: MakeApp, events: list[str]) -> Flask:
    app = make_app()

    @app.get("/stream")
    def stream() -> Response:
        def body() -> Iterator[str]:
            try:
                for number in range(3):
                    events.append(f"chunk {number}")
                    yield f"{number}\n"
                if request.args.get("fail"):
                    raise OSError("the upstream feed broke")
            finally:
                events.append("closed")

        return Response(stream_with_context(body()), mimetype="text/html")

    return app


def test_a_streamed_response_is_recorded_when_its_body_is_complete(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    events: list[str] = []
    response = streaming_app(make_app, events).test_client().get("/stream")
    chunks = iter(response.response)

    next(chunks)
    assert request_signals(td_signals) == []  # still streaming
    assert list(chunks) == [b"1\n", b"2\n"]
    assert len(request_signals(td_signals)) == 1
    response.close()

    signal = td_signals.one("pageView")
    assert signal["payload"]["HTTP.route"] == "/stream"
    assert events[-1] == "closed"


def test_a_client_that_goes_away_mid_stream_still_gives_exactly_one_signal(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    events: list[str] = []
    response = streaming_app(make_app, events).test_client().get("/stream")
    next(iter(response.response))

    response.close()  # what the server does when the client disconnects

    assert events == ["chunk 0", "closed"]
    assert len(request_signals(td_signals)) == 1
    response.close()
    assert len(request_signals(td_signals)) == 1


def test_a_stream_closed_before_its_first_chunk_gives_one_signal(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    response = streaming_app(make_app, []).test_client().get("/stream")
    response.close()
    assert len(request_signals(td_signals)) == 1


def test_reading_the_whole_body_then_closing_is_not_doubled(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    client = streaming_app(make_app, []).test_client()
    response = client.get("/stream")
    assert response.text == "0\n1\n2\n"
    response.close()
    with client.get("/stream") as second:
        assert second.data == b"0\n1\n2\n"
    assert len(request_signals(td_signals)) == 2


def test_a_stream_that_fails_half_way_is_an_error(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    response = streaming_app(make_app, []).test_client().get("/stream?fail=1")
    chunks = iter(response.response)
    received = []
    try:
        for chunk in chunks:
            received.append(chunk)
    except OSError:
        pass
    response.close()

    assert received == [b"0\n", b"1\n", b"2\n"]
    error = td_signals.one("TelemetryDeck.Error.occurred")["payload"]
    assert error["TelemetryDeck.Error.id"] == "OSError"
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "500"


def test_current_works_inside_a_streamed_body(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()

    @app.get("/feed")
    def feed() -> Response:
        def body() -> Iterator[str]:
            yield "a"
            td_web.current().signal("Feed.delivered")

        return Response(body(), mimetype="text/plain")

    with app.test_client().get("/feed") as response:
        assert response.text == "a"
    feed_signal = td_signals.one("Feed.delivered")
    assert feed_signal["sessionID"] == td_signals.one("HTTP.request")["sessionID"]
    assert not td_web.current().active  # deactivated when the body ended


def test_a_complete_body_is_recorded_without_reading_it(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()
    app.add_url_rule("/", "index", lambda: "<p>hello</p>")
    app.test_client().get("/")  # the body is never read nor closed
    assert len(request_signals(td_signals)) == 1


def test_a_file_is_passed_to_the_server_unwrapped(
    make_app: MakeApp, td_signals: CapturedSignals, tmp_path: Any
) -> None:
    from flask import send_file

    report = tmp_path / "report.csv"
    report.write_text("a,b\n1,2\n")
    app = make_app()

    @app.get("/download")
    def download() -> Response:
        return send_file(report)

    class FileWrapper:
        def __init__(self, file: Any, block_size: int = 8192) -> None:
            self.file = file

        def __iter__(self) -> Iterator[bytes]:
            return iter(lambda: self.file.read(8192), b"")

        def close(self) -> None:
            self.file.close()

    seen: list[Any] = []
    wsgi = app.wsgi_app

    def server(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.file_wrapper"] = FileWrapper
        body = wsgi(environ, start_response)
        seen.append(body)
        return body

    app.wsgi_app = server  # type: ignore[method-assign]
    with app.test_client().get("/download") as response:
        assert response.data == b"a,b\n1,2\n"
    assert isinstance(seen[0], FileWrapper)  # the server's sendfile path stays available
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/download"
