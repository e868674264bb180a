"""One HTTP request on its way through the middleware: every per-request fact lives here,
created per call, so concurrent requests never share state (the middleware holds none)."""

from __future__ import annotations

from .._log import logger, throttled
from .._types import Message, Receive, Scope, Send
from .._web import Telemetry
from ._routes import route_template

#: Reported when the client went away before a response started (nginx's convention).
CLIENT_CLOSED_REQUEST = 499
#: Besides ``http.response.body``: messages that end the body unless ``more_body`` says not
#: (a ``pathsend`` has no ``more_body``: it always ends it).
_OTHER_ENDS = frozenset({"http.response.zerocopysend", "http.response.pathsend"})


class HTTPCall:
    __slots__ = (
        "_entry_path",
        "_entry_root_path",
        "_receive",
        "_send",
        "content_type",
        "disconnected",
        "finished",
        "scope",
        "status",
        "telemetry",
    )

    #: Set by the middleware right after construction (``begin`` is given :meth:`user`).
    telemetry: Telemetry

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        # Routers rewrite these (Mount grows root_path; old Starlette also strips path).
        self._entry_path: str = scope["path"]
        self._entry_root_path: str = scope.get("root_path") or ""
        self.status: int | None = None
        self.content_type: str | None = None
        self.disconnected = False
        self.finished = False

    def user(self, _request: object) -> object:
        """The request's user lookup (a bound method costs less than a ``partial``); the
        core hands it its Starlette request (or None), and the scope says it all."""
        return scope_user(self.scope)

    # -- the wrapped ASGI callables ---------------------------------------------------------

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            message = self._started(message)
        try:
            await self._send(message)
        except OSError:  # the server's way of saying the client is gone (ClientDisconnected)
            self.disconnected = True
            raise
        # The body is complete: that ends the duration, even if the app still runs background
        # tasks. A 5xx waits for the app to return: Starlette's error middleware sends its
        # 500 page first and raises the exception afterwards.
        if (
            (kind == "http.response.body" or kind in _OTHER_ENDS)
            and not message.get("more_body", False)
            and (self.status is None or self.status < 500)
        ):
            self.finish()

    def _started(self, message: Message) -> Message:
        try:
            self.status = int(message["status"])
            headers = message.get("headers") or ()
            if not isinstance(headers, (list, tuple)):
                # Any iterable is allowed; one that can be read only once is kept as a list.
                headers = list(headers)
                message = {**message, "headers": headers}
            app_cookies = []
            cache_control = None
            for name, value in headers:
                if name == b"content-type":
                    self.content_type = value.decode("latin-1")
                elif name == b"set-cookie":
                    app_cookies.append(value.decode("latin-1"))
                elif name == b"cache-control":
                    cache_control = value.decode("latin-1")
            cookies = self.telemetry.response_cookies(app_cookies, cache_control)
            if cookies:
                # A new list and message: the app may reuse its own for the next response.
                headers = [*headers]
                for cookie in cookies:
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                return {**message, "headers": headers}
        except Exception:
            logger.exception("td_web: reading the response start failed; forwarded unchanged")
        return message

    # -- the end of the request -------------------------------------------------------------

    def finish(self) -> None:
        """Queue the request's signals; once (the last body, or the app's return)."""
        if self.finished:
            return
        self.finished = True
        try:
            status = self.status
            if status is None and self.disconnected:
                status = CLIENT_CLOSED_REQUEST
            self.telemetry.finish(status, self.content_type, self._route())
        except Exception:
            logger.exception("td_web: finishing the request failed")

    def _route(self) -> str | None:
        try:
            return route_template(self.scope, self._entry_path, self._entry_root_path)
        except Exception as exc:
            throttled.warning(
                "asgi-route",
                "td_web: could not read the route template (%s: %s); sent without HTTP.route. "
                "Please report it with the router's type.",
                type(exc).__name__,
                exc,
            )
            return None


def scope_user(scope: Scope) -> object:
    """The user Starlette's ``AuthenticationMiddleware`` put in the scope, if signed in."""
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    for attribute in ("identity", "display_name"):
        try:
            value = getattr(user, attribute)
        except (NotImplementedError, AttributeError):
            continue
        if value is not None and value != "":
            return value
    return None
