from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from td_web.django import TelemetryDeckMiddleware


class CustomTelemetry(TelemetryDeckMiddleware):
    """A project's own subclass, as the system checks must recognise it."""


class ResetsTheSessionCookie:
    """Outside td_web: sets td_web's cookie name again, as ``response.set_cookie`` does."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.set_cookie("td_session", "reset-outside-td-web", max_age=60, secure=True)
        return response


class MergesIntoTheSessionCookie:
    """Outside td_web: merges attributes into td_web's morsel with ``|=`` (dict's merge,
    which Morsel does not override: it never calls ``update()``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        morsel = response.cookies["td_session"]
        morsel |= {"path": "/shop", "samesite": "Strict"}
        return response
