from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib.auth import authenticate, login
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)

import td_web
from td_web.django import TelemetryHttpRequest


class CheckoutFailed(Exception):
    pass


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<h1>home</h1>", content_type="text/html; charset=utf-8")


def page(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("<p>page</p>")


def item_json(request: HttpRequest, item_id: int, **kwargs: object) -> JsonResponse:
    return JsonResponse({"id": item_id})


def checkout(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
    return HttpResponse("ok", content_type="text/plain")


def via_current(request: HttpRequest) -> HttpResponse:
    sent = td_web.current().signal("Current.used")
    return HttpResponse(str(sent), content_type="text/plain")


def touch_user(request: TelemetryHttpRequest) -> HttpResponse:
    name = request.user.get_username() if request.user.is_authenticated else ""
    request.telemetry.signal("User.touched")
    return HttpResponse(f"<p>{name}</p>")


def plain(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.signal("Plain.viewed")
    return HttpResponse("<p>plain</p>")


def do_login(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if user is None:
        return HttpResponse("no", status=401)
    login(request, user)
    return HttpResponse("welcome", content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise CheckoutFailed("card declined for alice@example.com")


def missing(request: HttpRequest, item_id: int) -> HttpResponse:
    raise Http404("no such item")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def own_cookies(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("<p>cookies</p>")
    response.set_cookie("theme", "dark", httponly=True)
    response.set_cookie("td_session", "set-by-the-app-itself-123456")
    return response


def one_own_cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("<p>cookies</p>")
    response.set_cookie("theme", "dark", httponly=True)
    return response


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def body() -> Iterator[bytes]:
        yield b"a,b\n"
        yield b"1,2\n"

    return StreamingHttpResponse(body(), content_type="text/csv")


def stream_fails(request: HttpRequest) -> StreamingHttpResponse:
    def body() -> Iterator[bytes]:
        yield b"a,b\n"
        raise CheckoutFailed("mid-stream")

    return StreamingHttpResponse(body(), content_type="text/csv")


def file_download(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(b"x" * 10_000), filename="data.bin")


# -- async views ------------------------------------------------------------------------------


async def async_home(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return HttpResponse("<h1>async</h1>")


async def async_checkout(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.signal("Checkout.completed", {"Cart.items": 1})
    return HttpResponse("ok", content_type="text/plain")


async def async_auser(request: TelemetryHttpRequest) -> HttpResponse:
    user = await request.auser()
    return HttpResponse(f"<p>{user.is_authenticated}</p>")


async def async_user_in_a_thread(request: HttpRequest) -> HttpResponse:
    # Before Django 5.0 (no auser()), async views load the user through sync_to_async.
    authenticated = await sync_to_async(lambda: request.user.is_authenticated)()
    return HttpResponse(f"<p>{authenticated}</p>")


async def async_plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>async plain</p>")


async def async_boom(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    raise CheckoutFailed("async failure")


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"a,b\n"
        await asyncio.sleep(0)
        yield b"1,2\n"

    return StreamingHttpResponse(body(), content_type="text/csv")


async def async_stream_stalls(request: HttpRequest) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"first\n"
        await asyncio.Event().wait()  # never set: the client gives up first
        yield b"never\n"

    return StreamingHttpResponse(body(), content_type="text/plain")
