"""Hostile requests, once for every adapter: huge and malformed headers, invalid and forged
cookies, odd Accept-Language, Referer and Host values, invalid UTF-8 in paths; under WSGI
(Django, Flask) the environ built as PEP 3333 says (latin-1) and surrogate-escaped, as servers
that decode UTF-8 build it; under ASGI (Starlette, Django) as raw calls, plus what only ASGI
hands over as bytes (header values that are not valid UTF-8, raw paths with invalid UTF-8).
Each is answered exactly as the same app (``hostile_*.py``) answers it without td_web;
td_web logs no error, drops nothing, and what it sends passes the collector's validation."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from ingest_server import IngestServer
from privacy_canaries import (
    HostileRequest,
    IngestWindow,
    Outcome,
    asgi_cases,
    asgi_scope,
    call_asgi,
    call_wsgi,
    check_hostile_outcome,
    wsgi_cases,
    wsgi_environ,
)
from test_adapters.hostile_django import (
    DJANGO_ANSWERS_BEFORE_MIDDLEWARE,
    serve_django_asgi,
    serve_django_wsgi,
)
from test_adapters.hostile_flask import serve_flask
from test_adapters.hostile_starlette import serve_starlette

from td_web import TelemetryDeck

#: ``serve(client)``: an adapter's echo app with td_web sending through ``client``, or
#: without it (None); a context manager, for frameworks whose app needs settings around it.
Serve = Callable[[TelemetryDeck | None], AbstractContextManager[Any]]

WSGI: dict[str, tuple[Serve, set[str]]] = {
    "django": (serve_django_wsgi, DJANGO_ANSWERS_BEFORE_MIDDLEWARE),
    "flask": (serve_flask, set()),
}
ASGI: dict[str, tuple[Serve, set[str]]] = {
    "starlette": (serve_starlette, set()),
    "django": (serve_django_asgi, DJANGO_ANSWERS_BEFORE_MIDDLEWARE),
}


def _each(servers: dict[str, tuple[Serve, set[str]]], cases: list[Any]) -> list[Any]:
    """Every case under every server: ``(serve, answered before td_web, *case)``."""
    return [
        pytest.param(*server, *case.values, id=f"{name}-{case.id}")
        for name, server in servers.items()
        for case in cases
    ]


class Comparison:
    """One case answered by an app without td_web and with it (sending through the module's
    client): the answers must match, td_web logs no error, drops nothing, sends what is valid."""

    def __init__(
        self, ingest: IngestServer, client: TelemetryDeck, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.window = IngestWindow(ingest)  # this case's signals only
        self.client = client
        self.caplog = caplog
        #: Without td_web, then with it.
        self.clients = (None, client)

    def check(self, case: HostileRequest, outcomes: dict[bool, Outcome], unseen: set[str]) -> None:
        check_hostile_outcome(
            case,
            outcomes[True],
            outcomes[False],
            self.client,
            self.window,
            self.caplog.records,
            seen_by_td_web=case.id not in unseen,
        )


@pytest.fixture
def compare(
    module_ingest: IngestServer, module_client: TelemetryDeck, caplog: pytest.LogCaptureFixture
) -> Comparison:
    return Comparison(module_ingest, module_client, caplog)


@pytest.mark.parametrize(("serve", "unseen", "case", "decoding"), _each(WSGI, wsgi_cases()))
def test_hostile_request_under_wsgi(
    serve: Serve, unseen: set[str], case: HostileRequest, decoding: Any, compare: Comparison
) -> None:
    outcomes: dict[bool, Outcome] = {}
    for client in compare.clients:
        with serve(client) as app:
            outcomes[client is not None] = call_wsgi(app, wsgi_environ(case, decoding))

    compare.check(case, outcomes, unseen)


@pytest.mark.parametrize(("serve", "unseen", "case"), _each(ASGI, asgi_cases()))
async def test_hostile_request_under_asgi(
    serve: Serve, unseen: set[str], case: HostileRequest, compare: Comparison
) -> None:
    outcomes: dict[bool, Outcome] = {}
    for client in compare.clients:
        with serve(client) as app:
            outcomes[client is not None] = await call_asgi(app, asgi_scope(case))

    compare.check(case, outcomes, unseen)
