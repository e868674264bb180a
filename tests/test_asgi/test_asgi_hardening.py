"""Privacy hardening (issue 13) through real ASGI calls (Starlette's test client and raw
scopes) and the real ingest server: secrets in paths, IPv6 hosts, sessions keyed with a real
secret, shared-cacheable responses, async user callables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import cyclic_garbage
from ingest_server import IngestServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from test_asgi.asgi_support import APP_ID, ASGIServer, TestClient, http_scope

from td_web import ConfigurationError, Telemetry
from td_web.asgi import TelemetryDeckMiddleware


async def page(request: Request) -> Response:
    return HTMLResponse("<p>page</p>")


async def public(request: Request) -> Response:
    return HTMLResponse("<p>public</p>", headers={"Cache-Control": "max-age=60, s-maxage=600"})


_built: list[TelemetryDeckMiddleware] = []


@pytest.fixture(autouse=True)
def _close_each_client(ingest: IngestServer) -> Iterator[None]:
    """Each test closes the clients it built while its ingest still answers: a sender left
    running kept its unsent signals and retried them against the closed port, logging into
    whichever later test captured warnings."""
    yield
    while _built:
        _built.pop().client.close(5)


def _middleware(ingest: IngestServer, **options: Any) -> TelemetryDeckMiddleware:
    app = Starlette(routes=[Route("/page", page), Route("/public", public)])
    settings = {
        "app_id": APP_ID,
        "salt": "asgi-hardening-salt",
        "endpoint": ingest.url,
        "flush_interval": 3600,
        "handle_sigterm": False,
        **options,
    }
    middleware = TelemetryDeckMiddleware(app, **settings)
    _built.append(middleware)
    return middleware


def _page_views(middleware: TelemetryDeckMiddleware, ingest: IngestServer) -> list[Any]:
    assert middleware.client.flush(30)
    return [
        s["payload"] for s in ingest.accepted_signals if s["type"] in ("pageView", "HTTP.request")
    ]


def test_secrets_in_an_unrouted_path_never_reach_the_ingest(ingest: IngestServer) -> None:
    middleware = _middleware(ingest)
    leaky = "/u/carol@example.net;jsessionid=SECRETJSESSION/eyJhbGciOiJIUzI1NiJ9abcDEF123/x%23frag"
    TestClient(middleware).get(leaky, headers={"Referer": "http://testserver" + leaky})
    [payload] = _page_views(middleware, ingest)
    assert "HTTP.route" not in payload  # no route template known: the path is all there is
    assert payload["path"] == "/u/{email}/{token}/x"
    assert payload["referer"] == "http://testserver/u/{email}/{token}/x"
    for secret in ("carol@example.net", "SECRETJSESSION", "eyJhbGci", "frag"):
        assert secret not in repr(payload)


async def test_an_ipv6_referer_stays_a_url_and_counts_as_same_site(ingest: IngestServer) -> None:
    middleware = _middleware(ingest)
    headers = [("host", "[::1]:8000"), ("referer", "http://[::1]:8000/a?x=1")]
    await ASGIServer().run(middleware, http_scope("/page", headers=headers))
    # No Host header: the address comes from scope["server"].
    await ASGIServer().run(middleware, http_scope("/page", server=("::1", 8443)))
    first, second = _page_views(middleware, ingest)
    assert first["referer"] == "http://[::1]:8000/a"  # main: "http://::1:8000/a"
    assert first["TelemetryDeck.Navigation.sourcePath"] == "/a"  # main: "" (from outside)
    assert second["host"] == "[::1]:8443"  # main: "::1:8443"
    assert second["url"] == "http://[::1]:8443/page"


def test_cookieless_without_a_salt_refuses_to_start(ingest: IngestServer) -> None:
    with pytest.raises(ConfigurationError, match="cookieless=True needs a secret"):
        _middleware(ingest, salt=None, cookieless=True)


def test_a_shared_cacheable_response_gets_no_session_cookie(ingest: IngestServer) -> None:
    middleware = _middleware(ingest)
    client = TestClient(middleware)
    assert "td_session" not in client.get("/public").headers.get("set-cookie", "")
    assert "td_session" in client.get("/page").headers.get("set-cookie", "")
    assert len(_page_views(middleware, ingest)) == 2


def test_async_user_callables_are_refused_at_start_up(ingest: IngestServer) -> None:
    async def client_user(request: Request) -> str:
        return "user-1"

    class AsyncCallable:
        async def __call__(self, request: Request) -> bool:
            return True

    with pytest.raises(ConfigurationError, match="client_user must be a plain function"):
        _middleware(ingest, client_user=client_user)
    with pytest.raises(ConfigurationError, match="exclude must be a plain function"):
        _middleware(ingest, exclude=AsyncCallable())


def test_an_exclude_returning_a_coroutine_excludes_nothing(ingest: IngestServer) -> None:
    async def verdict() -> bool:
        return True

    middleware = _middleware(ingest, exclude=lambda request: verdict())
    TestClient(middleware).get("/page")
    assert len(_page_views(middleware, ingest)) == 1  # main: every request excluded


def test_a_tracked_request_leaves_no_reference_cycle_behind(ingest: IngestServer) -> None:
    """scope["state"] holds the helper and the helper held the scope (through the user
    lookup): every request was left to the cyclic garbage collector. The helper lets go of
    the request once its record is queued."""
    middleware = _middleware(ingest)
    client = TestClient(middleware)
    client.get("/page")  # the first request imports and caches what later ones reuse
    with cyclic_garbage() as garbage:
        for _ in range(3):
            assert client.get("/page").status_code == 200
    assert [type(o).__name__ for o in garbage if isinstance(o, Telemetry)] == []
    assert len(_page_views(middleware, ingest)) == 4


@pytest.mark.parametrize(
    ("options", "headers"),
    [
        ({"respect_gpc": True}, {"Sec-GPC": "1"}),  # an inert helper
        ({"sample_rate": 0.000001}, {}),  # a silenced one
        ({"exclude_paths": ["/page"]}, {}),  # an excluded one (holds the request weakly)
    ],
    ids=["gpc", "sampled-out", "excluded"],
)
def test_a_request_that_sends_nothing_leaves_no_reference_cycle_behind(
    ingest: IngestServer, options: dict[str, Any], headers: dict[str, str]
) -> None:
    middleware = _middleware(ingest, **options)
    client = TestClient(middleware)
    client.get("/page", headers=headers)
    with cyclic_garbage() as garbage:
        for _ in range(3):
            assert client.get("/page", headers=headers).status_code == 200
    assert [type(o).__name__ for o in garbage if isinstance(o, Telemetry)] == []
    assert _page_views(middleware, ingest) == []
