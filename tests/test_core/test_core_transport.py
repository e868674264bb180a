"""The POST itself (``_transport``): each request built once from the client's settings and sent
through ``Client.send``, to a given ``transport`` as to the real ingest, with no cookie."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer, Reply

from td_web import TelemetryDeck, __version__, _transport
from td_web._policy import Outcome
from td_web._transport import Transport, http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()


class Recording(httpx.HTTPTransport):  # type: ignore[misc,name-defined]
    """A user's transport: sees each request, then sends it to the real ingest."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def handle_request(self, request: Any) -> Any:
        self.seen.append(request)
        return super().handle_request(request)


def send_numbered(count: int, **options: Any) -> None:
    """``count`` signals numbered from 0, in batches of 10, delivered and closed."""
    td = TelemetryDeck(
        app_id=APP_ID, salt="pepper", max_batch_size=10, flush_interval=3600, **options
    )
    for i in range(count):
        td.signal("Numbered", {"Bench.seq": i})
    assert td.flush(10)
    td.close(5)


def numbers_arrived(ingest: IngestServer) -> list[int]:
    return sorted(int(signal["payload"]["Bench.seq"]) for signal in ingest.accepted_signals)


def test_a_given_transport_gets_every_post_with_the_headers_and_body_sent(
    ingest: IngestServer,
) -> None:
    transport = Recording()
    send_numbered(35, endpoint=ingest.url, transport=transport)
    # Every batch went through the user's transport, and what it was given is what arrived
    # (batches in flight at once arrive in any order: matched by their bodies).
    arrived_by_body = {arrived.raw: arrived.headers for arrived in ingest.requests}
    assert len(transport.seen) == len(arrived_by_body) == len(ingest.requests) == 4
    for request in transport.seen:
        assert request.method == "POST"
        assert str(request.url) == f"{ingest.url}/v2/"
        headers = arrived_by_body[request.content]
        assert dict(request.headers) == {name.lower(): value for name, value in headers.items()}
        assert headers == {
            "Host": f"127.0.0.1:{ingest.port}",
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"td_web/{__version__} python-{httpx.__name__}/{httpx.__version__}",
            "Content-Length": str(len(request.content)),
        }
    assert numbers_arrived(ingest) == list(range(35))


def test_a_cookie_the_ingest_sets_is_never_sent_back_nor_kept(ingest: IngestServer) -> None:
    ingest.default = Reply(headers={"Set-Cookie": "visitor=tracked-1; Path=/"})
    td = TelemetryDeck(app_id=APP_ID, salt="pepper", endpoint=ingest.url, flush_interval=3600)
    for i in range(3):  # one POST after another, on the same keep-alive client
        td.signal("Cookie.offered", {"Bench.seq": i})
        assert td.flush(5)
    transport = td._sender._transport
    clients = [line._http for line in (transport, *transport._lines) if line._http is not None]
    td.close(5)
    assert len(ingest.requests) == 3
    assert all("Cookie" not in request.headers for request in ingest.requests)
    assert clients and all(len(client.cookies.jar) == 0 for client in clients)


def test_each_request_carries_its_own_timeout_else_the_clients() -> None:
    timeouts: list[dict[str, float]] = []

    def handler(request: Any) -> Any:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200)

    transport = Transport("https://ingest.invalid/v2/", 7.0, transport=httpx.MockTransport(handler))
    assert transport.post(b"[]").error is None
    assert transport.post(b"[]", timeout=0.25).error is None
    assert transport.post(b"[]").error is None
    transport.close()
    client_default = dict.fromkeys(("connect", "read", "write", "pool"), 7.0)
    assert timeouts == [client_default, dict.fromkeys(client_default, 0.25), client_default]


def test_a_url_the_library_refuses_is_a_failed_attempt_not_a_crash() -> None:
    transport = Transport("http://[::1/v2/", 1.0)
    transport.prepare()  # the client is built; the URL is read at the first POST
    answer = transport.post(b"[]")
    transport.close()
    assert answer.outcome is Outcome.RETRY
    assert answer.detail.startswith("unexpected InvalidURL")


def test_a_post_after_close_is_refused_and_opens_no_connection(ingest: IngestServer) -> None:
    """A sync-mode request thread may be inside a POST while the exit closes the transport:
    the closed client refuses it, as Client.send does, instead of opening a connection that
    nobody closes."""
    transport = Transport(ingest.url, 5.0)
    assert transport.post(b"[]").outcome is Outcome.SENT
    transport.close()
    answer = transport.post(b"[]")
    assert answer.outcome is Outcome.RETRY
    assert "closed" in answer.detail
    assert len(ingest.requests) == 1


def test_each_poster_line_has_its_own_client_sharing_one_tls_context(
    monkeypatch: Any,
) -> None:
    contexts: list[object] = []
    create = httpx.create_ssl_context

    def counted(*args: Any, **kwargs: Any) -> Any:
        contexts.append(create(*args, **kwargs))
        return contexts[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", counted)
    transport = Transport("https://ingest.invalid/v2/", 5.0, connections=4)
    lines = [transport.line() for _ in range(4)]
    transport.prepare()
    for line in lines:
        line.prepare()
    clients = {id(line._http) for line in lines}
    transport.close()
    # Four clients of one connection each, and the CA bundle loaded once for all of them,
    # by prepare(): the transport they share it from builds no client of its own.
    assert len(clients) == 4 and transport._http is None
    assert len(contexts) == 1
    assert all(line._http.is_closed for line in lines)


def test_a_given_transport_is_shared_by_every_poster() -> None:
    given = httpx.MockTransport(lambda request: httpx.Response(200))
    transport = Transport("https://ingest.invalid/v2/", 5.0, transport=given, connections=4)
    assert transport.line() is transport
    transport.close()


def test_a_proxy_from_the_environment_carries_every_post(
    ingest: IngestServer, monkeypatch: Any
) -> None:
    # The ingest server stands in for the proxy: it is given each request in absolute form.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", ingest.url)
    send_numbered(25, endpoint="http://ingest.example.invalid")
    assert len(ingest.requests) == 3  # the posters' clients, each with the proxy
    assert {request.path for request in ingest.requests} == {"http://ingest.example.invalid/v2/"}
    assert numbers_arrived(ingest) == list(range(25))


def test_without_the_librarys_transport_lookup_posts_go_through_client_send(
    ingest: IngestServer, monkeypatch: Any
) -> None:
    # td_web calls the client's transport for the URL directly, found through a method the
    # library keeps private; where it is missing, the client is still used, through send().
    sent: list[Any] = []
    send = httpx.Client.send
    monkeypatch.setattr(
        httpx.Client, "send", lambda self, request: sent.append(request) or send(self, request)
    )
    direct = Transport(f"{ingest.url}/v2/", 5.0)
    assert direct.post(b'[{"type": "A"}]').outcome is Outcome.SENT
    direct.close()
    assert sent == []  # the client's transport was called directly
    monkeypatch.setattr(_transport, "_route", lambda client, url: None)
    fallback = Transport(f"{ingest.url}/v2/", 5.0)
    assert fallback.post(b'[{"type": "B"}]').outcome is Outcome.SENT
    fallback.close()
    assert len(sent) == 1 and len(ingest.requests) == 2


@contextlib.contextmanager
def tls_proxy(certificate: Path) -> Iterator[tuple[str, list[str]]]:
    """A forward proxy on loopback reached over TLS with a self-signed ``certificate``: its
    URL, and the absolute URLs it was asked to forward (it answers each with 200 itself)."""
    key = certificate.with_suffix(".key")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    forwarded: list[str] = []

    class Forwarding(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            forwarded.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forwarding)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", forwarded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="makes its certificate with openssl")
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_an_https_proxy_for_a_plain_http_ingest_has_its_certificate_verified(
    variable: str, monkeypatch: Any, tmp_path: Path
) -> None:
    """A plain http:// ingest loads no CA bundle for itself, but an https:// proxy from the
    environment is a TLS connection all the same: one with a certificate nobody trusts is
    refused, and not one byte of the batch reaches it."""
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    certificate = tmp_path / "proxy.pem"
    with tls_proxy(certificate) as (proxy, forwarded):
        monkeypatch.setenv(variable, proxy)
        untrusted = Transport("http://ingest.example.invalid/v2/", 5.0, connections=4)
        answer = untrusted.line().post(b"[]")
        untrusted.close()
        assert answer.outcome is Outcome.RETRY
        assert "CERTIFICATE_VERIFY_FAILED" in answer.detail
        assert forwarded == []
        if http_library().__name__ == "httpx2":  # (httpx's trust store ignores SSL_CERT_FILE)
            # The same proxy, its certificate trusted: the refusal above was the verification.
            monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
            trusted = Transport("http://ingest.example.invalid/v2/", 5.0, connections=4)
            assert trusted.line().post(b"[]").outcome is Outcome.SENT
            trusted.close()
            assert forwarded == ["http://ingest.example.invalid/v2/"]


def test_in_the_background_only_the_posters_clients_are_built(
    ingest: IngestServer, monkeypatch: Any
) -> None:
    """Each poster line POSTs through a client of its own: the transport they come from
    builds none for itself (it would never send), and close() closes every one that was."""
    built: list[Any] = []

    class Counted(httpx.Client):  # type: ignore[misc,name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(httpx, "Client", Counted)
    td = TelemetryDeck(
        app_id=APP_ID, salt="pepper", endpoint=ingest.url, max_batch_size=10, flush_interval=3600
    )
    for i in range(35):
        td.signal("Numbered", {"Bench.seq": i})
    assert td.flush(10)
    transport = td._sender._transport
    lines = list(transport._lines)
    td.close(5)
    assert numbers_arrived(ingest) == list(range(35))
    # (A line whose poster never had a batch of its own built none either.)
    assert lines and transport._http is None
    assert built and sorted(map(id, built)) == sorted(
        id(line._http) for line in lines if line._http is not None
    )
    assert all(client.is_closed for client in built)


def test_a_sync_mode_client_posts_through_the_transports_own_client(
    ingest: IngestServer,
) -> None:
    td = TelemetryDeck(app_id=APP_ID, salt="pepper", endpoint=ingest.url, sync=True)
    td.signal("Numbered", {"Bench.seq": 0})
    transport = td._sender._transport
    client = transport._http
    td.close(5)
    assert numbers_arrived(ingest) == [0]
    assert client is not None and client.is_closed and not transport._lines
