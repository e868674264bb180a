"""``TelemetryDeckMiddleware``: a pure ASGI middleware (no ``BaseHTTPMiddleware``).

The middleware object holds only application-wide things (the options, the client); each
request's state lives in an :class:`HTTPCall` made for that call. ``websocket`` scopes go
through untouched, and so do ``lifespan`` scopes, but for a flush before the server is told
shutdown is complete (see ``td_web._web.lifespan``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from .._client import TelemetryDeck
from .._config import ConfigurationError
from .._log import logger
from .._types import ASGIApp, Receive, Scope, Send
from .._web import Telemetry, WebTelemetry
from .._web.lifespan import LifespanCall
from ._call import HTTPCall
from ._static import static_prefixes
from ._view import request_view


class TelemetryDeckMiddleware:
    """Sends TelemetryDeck signals for the requests of any ASGI application.

    ::

        app = TelemetryDeckMiddleware(app, app_id="...")          # any ASGI app
        app.add_middleware(TelemetryDeckMiddleware, app_id="...") # Starlette, FastAPI

    Options are keyword arguments named like every td_web option (``app_id``, ``salt``,
    ``flush_interval``, ``exclude_paths``, ``client_user``, ..., or ``client=`` an existing
    :class:`td_web.TelemetryDeck`); what is not given comes from the ``TELEMETRYDECK_*``
    environment variables. ``test_mode`` defaults to the wrapped Starlette app's ``debug``.

    Inside a request the helper is ``request.state.telemetry``, ``td_web.current()``, or the
    FastAPI dependency ``td_web.asgi.TelemetryDep``. The ``exclude`` and ``client_user``
    callables, and ``default_payload`` when it is a callable, receive a
    ``starlette.requests.Request``; ``sampler`` receives the ``td_web.RequestView``.

    Users in control (README): ``before_send=``, ``before_send_errors=``, ``sample_rate=``,
    ``sampler=``, ``consent_required=``, ``consent_cookie_name=``, ``respect_dnt=``,
    ``exclude_status=``, ``exclude_routes=``, ``trusted_proxies=``; endpoints call
    ``request.state.telemetry.opt_out()`` / ``opt_in()`` or ``td_web.opt_out(response)``.
    """

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        debug = getattr(app, "debug", None)
        self.web = WebTelemetry.from_options(
            options,
            fallbacks={"test_mode": debug, "debug": debug} if isinstance(debug, bool) else None,
            source="TelemetryDeckMiddleware keyword arguments",
        )
        self._wants_request = (
            self.web.settings.exclude is not None
            or self.web.settings.client_user is not None
            or self.web.make_properties is not None
        )
        if self._wants_request and not _starlette_installed():
            raise ConfigurationError(
                "the exclude, client_user and default_payload callables receive a starlette "
                "Request; "
                "install starlette (td_web[asgi]) to use them"
            )
        # Application-wide, set once: whether the app's StaticFiles mounts were looked up.
        self._static_checked = False

    @property
    def client(self) -> TelemetryDeck:
        """The :class:`td_web.TelemetryDeck` this middleware sends through."""
        return self.web.client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        # The request itself here, not in a coroutine of its own: one fewer per request.
        call = self._begin(scope, receive, send)
        if call is None:
            await self.app(scope, receive, send)
            return
        token = call.telemetry.activate()
        try:
            await self.app(scope, call.receive, call.send)
        except asyncio.CancelledError:
            # The server cancels the request when its client goes away: a 499, not a 500.
            call.disconnected = True
            raise
        except Exception as exc:
            if not call.disconnected:  # a vanished client is not the application's error
                call.telemetry.record_exception(exc)
            raise
        finally:
            call.finish()
            Telemetry.deactivate(token)

    def _begin(self, scope: Scope, receive: Receive, send: Send) -> HTTPCall | None:
        try:
            if not self._static_checked:
                self._exclude_static_mounts(scope)
            native = _starlette_request(scope, receive) if self._wants_request else None
            view = request_view(scope, self.web)
            call = HTTPCall(scope, receive, send)
            telemetry = call.telemetry = self.web.begin(view, native, call.user)
            state = scope.get("state")
            if state is None:
                # Servers without lifespan state give none; Starlette's request.state reads it.
                scope["state"] = {"telemetry": telemetry}
            else:  # the server's per-request copy of the lifespan state: add, keep the rest
                state["telemetry"] = telemetry
            return call
        except Exception:
            logger.exception("td_web: starting the request failed; it is served untracked")
            return None

    def _exclude_static_mounts(self, scope: Scope) -> None:
        self._static_checked = True
        # Inside Starlette (add_middleware) the app is in the scope; wrapping it, it is ours.
        app = scope.get("app") or self.app
        for prefix in static_prefixes(app, scope.get("root_path") or ""):
            self.web.exclusions.add_prefix(prefix)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        await LifespanCall(self.web.flush_at_shutdown, receive, send).run(
            self.app, scope, speaks_lifespan=_speaks_lifespan(self.app, scope)
        )


def _speaks_lifespan(app: object, scope: Scope) -> bool:
    """A Starlette (or FastAPI) application always speaks lifespan (its router answers it), so
    an exception raised before it received the startup message comes from a middleware in
    between that crashed, and must reach the server (Starlette's own
    ``test_exception_in_middleware``). ``app`` is the wrapped application; inside Starlette
    (``add_middleware``) the scope names the application td_web runs in."""
    applications = sys.modules.get("starlette.applications")
    if applications is None:  # Starlette not imported: no Starlette application exists
        return False
    starlette = applications.Starlette
    return isinstance(app, starlette) or isinstance(scope.get("app"), starlette)


def _starlette_installed() -> bool:
    try:
        import starlette.requests  # noqa: F401
    except ImportError:
        return False
    return True


def _starlette_request(scope: Scope, receive: Receive) -> Any:
    """What the ``exclude`` and ``client_user`` callables receive."""
    from starlette.requests import Request

    return Request(scope, receive)
