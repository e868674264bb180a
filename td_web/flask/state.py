"""One Flask app's td_web state (``app.extensions["telemetrydeck"]``) and the hooks that
connect Flask's request handling to the core's request telemetry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

from flask import (
    Flask,
    current_app,
    g,
    got_request_exception,
    has_request_context,
    request,
    session,
)
from werkzeug.routing import Map

from .._client import TelemetryDeck as Client
from .._log import logger
from .._web import Telemetry, WebTelemetry
from .exchange import EXCHANGE_KEY, Exchange
from .middleware import TelemetryMiddleware
from .request_view import request_view

#: Where each app keeps its td_web state.
EXTENSION_KEY = "telemetrydeck"

# Where Flask-Login (0.5 and 0.6) keeps a loaded user and the logged-in user's id.
_FLASK_LOGIN_USER = "_login_user"
_FLASK_LOGIN_SESSION_ID = "_user_id"


class UserLoaders(Protocol):
    """The extension, as the state sees it: where ``@td.user_loader`` put its function."""

    @property
    def loaded_user_loader(self) -> Callable[[], object] | None: ...


def state_for(app: Flask) -> AppTelemetry:
    """The td_web state of ``app``; a RuntimeError if init_app was not called for it."""
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppTelemetry):
        raise RuntimeError("td_web's TelemetryDeck was not set up for this app (init_app)")
    return state


class AppTelemetry:
    """Per app: the core's request telemetry, where its user comes from, and Flask's hooks."""

    def __init__(self, extension: UserLoaders, web: WebTelemetry) -> None:
        self.extension = extension
        self.web = web
        self.uses_flask_login = False
        self._prepared = False

    @property
    def has_user_source(self) -> bool:
        return self.uses_flask_login or self.extension.loaded_user_loader is not None

    def current_user(self, _request: object = None) -> object:
        """The user of the request being handled (the core's user lookup: it hands over the
        Flask request, and Flask's globals say it all): ``@td.user_loader``, else Flask-Login.

        Flask-Login is read without ever calling its own user loader: a user the view already
        loaded (``current_user``) is used as it is; otherwise the id Flask-Login keeps in the
        session at login. Analytics never costs the app a database query. (The ``client_user``
        option, given the Flask request, wins over both: the core applies it.)
        """
        if not has_request_context():
            return None
        loader = self.extension.loaded_user_loader
        if loader is not None:
            return loader()
        if not self.uses_flask_login:
            return None  # without a LoginManager, a "_user_id" session key is someone else's
        user = g.get(_FLASK_LOGIN_USER)
        if user is not None:
            if not getattr(user, "is_authenticated", False):
                return None
            get_id = getattr(user, "get_id", None)
            return get_id() if get_id is not None else None
        # Not loaded by the view: the id login_user() stored (user.get_id() at login time).
        return session.get(_FLASK_LOGIN_SESSION_ID)

    @property
    def client(self) -> Client:
        return self.web.client

    def install(self, app: Flask) -> None:
        # First among the app's before_request functions, so that request.telemetry exists
        # in every later one (and in after_request functions and error handlers).
        app.before_request_funcs.setdefault(None, []).insert(0, self.before_request)
        got_request_exception.connect(record_unhandled_exception)
        app.wsgi_app = TelemetryMiddleware(app.wsgi_app, self.web)  # type: ignore[method-assign]

    def _prepare(self, app: Flask, script_name: str) -> None:
        """Once, at the first request: blueprints and Flask-Login are all set up by then."""
        for prefix in static_prefixes(app.url_map):
            self.web.exclusions.add_prefix(prefix)
            if script_name:
                self.web.exclusions.add_prefix(script_name + prefix)
        self.uses_flask_login = getattr(app, "login_manager", None) is not None
        self._prepared = True

    # -- hooks -------------------------------------------------------------------------------

    def before_request(self) -> None:
        native = cast(Any, request)._get_current_object()
        try:
            environ = native.environ
            if not self._prepared:
                self._prepare(current_app, environ.get("SCRIPT_NAME", ""))
            exchange = environ.get(EXCHANGE_KEY)
            managed = exchange is not None and exchange.web is self.web
            if not managed:
                # The middleware was bypassed (a test_request_context, an app calling
                # Flask.wsgi_app directly): custom signals work, no automatic signal.
                exchange = environ[EXCHANGE_KEY] = Exchange(self.web)
            view = request_view(environ, self.web)
            # Without a user source every request is anonymous: nothing to ask. (The
            # has_user_source property spelled out: its two property calls cost 1,500
            # instructions per request, valgrind.)
            lookup = (
                self.current_user
                if self.uses_flask_login or self.extension.loaded_user_loader is not None
                else None
            )
            telemetry = self.web.begin(view, native, lookup)
            rule = native.url_rule
            if rule is not None:
                script_name = environ.get("SCRIPT_NAME")
                telemetry.route = script_name + rule.rule if script_name else rule.rule
            exchange.telemetry = telemetry
            if managed:
                exchange.token = telemetry.activate()
        except Exception:
            logger.exception("td_web: starting the request's telemetry failed")
            telemetry = Telemetry.inert("starting the request's telemetry failed (logged)")
        native.telemetry = telemetry


def record_unhandled_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    """Receiver of Flask's ``got_request_exception``: an exception no error handler took.

    Flask's own handling is untouched: it still logs, calls the 500 handler or propagates.
    """
    try:
        environ = request.environ
        exchange: Exchange | None = environ.get(EXCHANGE_KEY)
        if exchange is None:
            return
        # Failed before td_web's before_request hook ran (opening the session, say).
        telemetry = exchange.telemetry or exchange.begin_late(environ)
        telemetry.record_exception(exception)
        telemetry.settle_user()  # a propagating exception ends the context before start_response
    except Exception:
        logger.exception("td_web: recording an unhandled exception failed")


def static_prefixes(url_map: Map) -> Iterator[str]:
    """The URL prefixes of an app's static files (its own and its blueprints'), never tracked:
    ``/static/`` for ``/static/<path:filename>``, ``/admin/assets/`` for a blueprint's
    static folder under a URL prefix; a static folder served at the root gives nothing."""
    for rule in url_map.iter_rules():
        endpoint = rule.endpoint
        if endpoint != "static" and not endpoint.endswith(".static"):
            continue
        template = rule.rule
        prefix = template.split("<", 1)[0]
        if prefix and prefix != "/":
            yield prefix if prefix.endswith("/") else prefix + "/"
