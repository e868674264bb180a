"""Users: an authenticated user the request already loaded is sent (hashed); td_web itself never
loads one, so it adds no query to a request."""

from __future__ import annotations

from typing import Any

import django
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from td_django_helpers import MIDDLEWARE, SALT, telemetry_settings, user_hash

from td_web import hash_client_user
from td_web.django.users import loaded_user_id
from td_web.testing import CapturedSignals


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_view_that_uses_the_user_sends_its_hash(td_signals: CapturedSignals, alice: Any) -> None:
    _logged_in(alice).get("/touch-user/")

    expected = user_hash(alice)
    assert td_signals.one("pageView")["clientUser"] == expected
    assert td_signals.one("User.touched")["clientUser"] == expected


def test_view_that_ignores_the_user_stays_anonymous_and_costs_no_query(
    td_signals: CapturedSignals, alice: Any
) -> None:
    client = _logged_in(alice)
    with CaptureQueriesContext(connection) as queries:
        client.get("/plain/")

    assert len(queries) == 0
    assert td_signals.one("pageView")["clientUser"] != user_hash(alice)
    # The anonymous stand-in is per session: the custom signal shares it.
    assert td_signals.one("Plain.viewed")["clientUser"] == td_signals.one("pageView")["clientUser"]


def test_query_count_equals_that_without_the_middleware(
    alice: Any, td_signals: CapturedSignals
) -> None:
    client = _logged_in(alice)
    with CaptureQueriesContext(connection) as with_td_web:
        client.get("/touch-user/")
    with (
        override_settings(MIDDLEWARE=MIDDLEWARE[1:]),
        CaptureQueriesContext(connection) as without,
    ):
        client.get("/touch-user/")

    assert len(with_td_web) == len(without) > 0


def test_anonymous_visitor_who_touched_request_user(td_signals: CapturedSignals) -> None:
    Client().get("/touch-user/")

    signal = td_signals.one("pageView")
    assert signal["clientUser"] == td_signals.one("User.touched")["clientUser"]


def test_login_during_the_request_attributes_it_to_the_user(
    td_signals: CapturedSignals, alice: Any
) -> None:
    response = Client().post("/login/", {"username": "alice", "password": "wonderland"})

    assert response.status_code == 200
    assert td_signals.one("HTTP.request")["clientUser"] == user_hash(alice)


def test_explicit_client_user_wins(td_signals: CapturedSignals, alice: Any) -> None:
    with override_settings(
        TELEMETRYDECK=telemetry_settings(CLIENT_USER=lambda request: "tenant-7")
    ):
        _logged_in(alice).get("/plain/")

    assert td_signals.one("pageView")["clientUser"] == hash_client_user("tenant-7", SALT)


@pytest.mark.skipif(django.VERSION < (5, 0), reason="request.auser() is new in Django 5.0")
async def test_async_view_with_auser_sends_the_user(
    td_signals: CapturedSignals, alice: Any
) -> None:
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)

    await client.get("/async/auser/")

    assert td_signals.one("pageView")["clientUser"] == user_hash(alice)


async def test_async_view_loading_the_user_in_a_thread_sends_it(
    td_signals: CapturedSignals, alice: Any
) -> None:
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)

    response = await client.get("/async/user-in-a-thread/")

    assert response.content == b"<p>True</p>"
    assert td_signals.one("pageView")["clientUser"] == user_hash(alice)


async def test_async_view_that_ignores_the_user_stays_anonymous(
    td_signals: CapturedSignals, alice: Any
) -> None:
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)

    await client.get("/async/plain/")

    assert td_signals.one("pageView")["clientUser"] != user_hash(alice)


def test_loaded_user_id_reads_only_what_is_already_loaded(alice: Any) -> None:
    """RequestFactory requests with the lazy user Django's AuthenticationMiddleware sets."""
    from django.contrib.auth.models import AnonymousUser
    from django.utils.functional import SimpleLazyObject

    loads: list[str] = []

    def load() -> Any:
        loads.append("loaded")
        return alice

    request = RequestFactory().get("/")
    assert loaded_user_id(request) is None  # no auth middleware at all

    request.user = SimpleLazyObject(load)
    assert loaded_user_id(request) is None
    assert loads == []

    assert request.user.is_authenticated
    assert loaded_user_id(request) == alice.pk

    request.user = AnonymousUser()
    assert loaded_user_id(request) is None

    async_request = RequestFactory().get("/")
    async_request.user = SimpleLazyObject(load)
    async_request._acached_user = alice  # what `await request.auser()` leaves behind
    assert loaded_user_id(async_request) == alice.pk
