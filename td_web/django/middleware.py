"""``TelemetryDeckMiddleware``: request telemetry for Django, under WSGI and ASGI alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase

from .._log import logger
from .._web import Telemetry
from .._web.body import Finish, FinishingAsyncIterator, FinishingIterator
from . import runtime
from .caching import stored_by_site_cache
from .cookies import add_cookie
from .request_view import request_view, route_template
from .users import loaded_user_id

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

#: Exceptions Django answers with a 4xx response of its own: not errors of the application.
CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


class TelemetryDeckMiddleware:
    """Sends each request's automatic signals and gives views ``request.telemetry``.

    Put it first in ``MIDDLEWARE`` (or right after ``SecurityMiddleware``): then it also sees
    requests answered by other middleware (redirects, cached pages) and times the whole request.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        # Built now, while Django loads middleware (on the main thread for runserver), so that
        # the handle_sigterm option can install its handler; requests would build it anyway.
        runtime.current()
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django then calls us without a thread hop; __call__ hands over to __acall__.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        get_response: GetResponse = self.get_response  # type: ignore[assignment]
        state = runtime.current()
        telemetry = _start(state, request)
        if telemetry is None:
            return get_response(request)
        token = telemetry.activate()
        try:
            response = get_response(request)
        except Exception as exc:  # only with DEBUG_PROPAGATE_EXCEPTIONS: Django converts the rest
            _fail(state, request, telemetry, exc)
            raise
        finally:
            Telemetry.deactivate(token)
        _complete(state, request, telemetry, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: AsyncGetResponse = self.get_response  # type: ignore[assignment]
        state = runtime.current()
        telemetry = _start(state, request)
        if telemetry is None:
            return await get_response(request)
        token = telemetry.activate()
        try:
            response = await get_response(request)
        except Exception as exc:
            _fail(state, request, telemetry, exc)
            raise
        finally:
            Telemetry.deactivate(token)
        _complete(state, request, telemetry, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """A view raised: record it for the error signal; Django's own handling goes on."""
        telemetry = request.__dict__.get("telemetry")
        # Untracked requests share one helper: it must not keep a request's exception.
        if (
            isinstance(telemetry, Telemetry)
            and telemetry.active
            and not isinstance(exception, CLIENT_ERRORS)
        ):
            telemetry.record_exception(exception)
        return None


def _start(state: runtime.State, request: HttpRequest) -> Telemetry | None:
    """Attach ``request.telemetry``; returns it, or None when the request is not tracked."""
    web = state.active
    if web is not None:
        try:
            view = request_view(request, web, state.proxy_scheme, state.forwarded_host)
            telemetry = web.begin(view, request, loaded_user_id)
        except Exception:
            logger.exception("td_web: starting request telemetry failed; it is not tracked")
        else:
            request.telemetry = telemetry  # type: ignore[attr-defined]
            return telemetry
    request.telemetry = runtime.untracked(state, request)  # type: ignore[attr-defined]
    return None


def _complete(
    state: runtime.State, request: HttpRequest, telemetry: Telemetry, response: HttpResponseBase
) -> None:
    """Add the session cookie and record the request, or arrange for that after a stream."""
    try:
        for parts in telemetry.response_cookie_parts(
            (),
            _header(response, "cache-control"),
            state.inside_site_cache and stored_by_site_cache(request, response),
        ):
            add_cookie(response, parts)
        status = response.status_code
        content_type = _header(response, "content-type")
        route = route_template(request, state.root_urlconf)
        # The user as the response leaves; a streamed body is finished without asking again.
        telemetry.settle_user()
        if isinstance(response, StreamingHttpResponse):
            finish_after_body(
                response, partial(_finish_stream, telemetry, status, content_type, route)
            )
        else:
            telemetry.finish(status, content_type, route)
    except Exception:
        logger.exception("td_web: recording the request failed")


def _header(response: HttpResponseBase, lowered_name: str) -> str | None:
    """A response header, read from Django's own header mapping (name lower-cased -> (name,
    value)): ``response.get()`` goes through three Python frames and, for an absent header,
    a KeyError: 5,200 instructions against 1,400 for an absent one, 2,400 against 1,500 for
    a present one (valgrind)."""
    try:
        entry = response.headers._store.get(lowered_name)
    except AttributeError:  # headers that are not Django's ResponseHeaders
        return response.get(lowered_name)
    return None if entry is None else entry[1]


def _finish_stream(
    telemetry: Telemetry,
    status: int,
    content_type: str | None,
    route: str | None,
    interrupted: BaseException | None,
) -> None:
    try:
        error = interrupted if isinstance(interrupted, Exception) else None
        telemetry.finish(status, content_type, route, error=error)
    except Exception:
        logger.exception("td_web: recording a streamed request failed")


def _fail(state: runtime.State, request: HttpRequest, telemetry: Telemetry, exc: Exception) -> None:
    """The exception escaped Django's handling (``DEBUG_PROPAGATE_EXCEPTIONS``)."""
    try:
        telemetry.finish(
            500,
            None,
            route_template(request, state.root_urlconf),
            error=exc,
        )
    except Exception:
        logger.exception("td_web: recording a failed request failed")


def finish_after_body(response: StreamingHttpResponse, finish: Finish) -> None:
    """Arrange for ``finish`` to run once, when the response's body has been sent.

    The body of a ``StreamingHttpResponse`` is produced after the middleware returned, so the
    request is timed (and recorded) when its iterator is exhausted, fails, or is closed
    (servers close the response when the client goes away). ``FileResponse`` keeps its file
    object so that WSGI servers can still use ``wsgi.file_wrapper`` (sendfile); it is finished
    when the response is closed."""
    closers = getattr(response, "_resource_closers", None)
    if getattr(response, "file_to_stream", None) is not None and isinstance(closers, list):
        # Replacing a FileResponse's content would disable sendfile; every server closes the
        # response after sending it, and close() runs these closers.
        closers.append(lambda: finish(None))
        return
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = FinishingAsyncIterator(content, finish)  # type: ignore[arg-type]
    else:
        response.streaming_content = FinishingIterator(content, finish)  # type: ignore[arg-type]
