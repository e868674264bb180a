"""TelemetryDeck analytics for Flask: the ``TelemetryDeck`` extension.

::

    from flask import Flask, request
    from td_web.flask import TelemetryDeck

    td = TelemetryDeck()  # or TelemetryDeck(app)

    def create_app():
        app = Flask(__name__)
        app.config["TELEMETRYDECK_APP_ID"] = "..."
        td.init_app(app)
        return app

    @bp.post("/checkout")
    def checkout():
        request.telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)

Every request then sends ``pageView`` (HTML GET) or ``HTTP.request`` with ``HTTP.route`` taken
from ``request.url_rule`` (``/items/<int:item_id>`` becomes ``/items/{item_id}``, blueprint
and mount prefixes included), ``TelemetryDeck.Session.started`` for a new session, and
``TelemetryDeck.Error.occurred`` for an exception no error handler took.

Settings
    Every option is the config key ``TELEMETRYDECK_<NAME>``: ``APP_ID``, ``SALT``,
    ``ENDPOINT``, ``NAMESPACE``, ``TEST_MODE``, ``ENABLED``, ``FLUSH_INTERVAL``,
    ``SESSION_COOKIE_NAME``, ``EXCLUDE_PATHS``, ``CLIENT`` (an existing ``td_web.TelemetryDeck``)
    and the rest of td_web's options, ``HANDLE_SIGTERM`` among them (below). Keyword arguments to
    ``TelemetryDeck(...)`` (for every app) and ``init_app(app, ...)`` win over the config; the
    ``TELEMETRYDECK_*`` environment variables come next; ``TEST_MODE`` then defaults to
    ``app.debug or app.testing``. An unknown ``TELEMETRYDECK_*`` key is an error naming it.
    Users in control (README): ``TELEMETRYDECK_BEFORE_SEND``, ``_BEFORE_SEND_ERRORS``,
    ``_SAMPLE_RATE``, ``_SAMPLER``, ``_CONSENT_REQUIRED``, ``_CONSENT_COOKIE_NAME``,
    ``_RESPECT_DNT``, ``_EXCLUDE_STATUS``, ``_EXCLUDE_ROUTES``, ``_TRUSTED_PROXIES``, and
    ``_DEFAULT_PAYLOAD`` as a callable given the Flask request; views call
    ``request.telemetry.opt_out()`` / ``opt_in()`` or ``td_web.opt_out(response)``.
    One extension object serves any number of apps, each with its own client, kept in
    ``app.extensions["telemetrydeck"]``. Without a salt, session derivations are keyed with a
    one-way derivation of the app's ``SECRET_KEY`` (set it before ``init_app``); cookieless
    mode without either is refused.

Users
    ``@td.user_loader`` registers a function returning the signed-in user's identifier (or
    None); it is hashed with the salt before it leaves the process. Without one, Flask-Login is
    used when the app has a ``LoginManager``: a user the view already loaded
    (``current_user``), otherwise the id Flask-Login stored in the session at login. td_web never
    calls Flask-Login's user loader itself, so analytics adds no database query. The user is
    read while the request context exists, so it is right for streamed responses too. The
    ``client_user`` option (a callable given the Flask request) wins over both.

Streaming and errors
    A response without a ``Content-Length`` (a generator, ``stream_with_context``,
    ``stream_template``) is timed to the end of its body; a client that disconnects still
    yields exactly one signal. Exceptions are seen through Flask's ``got_request_exception``
    signal: Flask still logs them, calls the app's error handlers and sends its 500 page (or
    propagates them when testing). Exceptions an error handler takes, and HTTP errors such as
    ``abort(404)``, are statuses, not errors.

Static files and health checks
    The app's static route and every blueprint's (whatever their URL prefix) are never
    tracked, nor are td_web's default exclusions (``/favicon.ico``, ``/healthz``, ...).

Proxies
    ``ProxyFix`` may wrap ``app.wsgi_app`` before or after ``init_app``: td_web reads the
    request where Flask does.

Shutdown
    Queued signals are delivered at exit. Servers that leave SIGTERM at its default (``flask
    run``, ``waitress-serve``) would be killed before that, so where nothing else handles
    SIGTERM, td_web's handler delivers what is queued and then lets SIGTERM end the process as
    before (``TELEMETRYDECK_HANDLE_SIGTERM = False`` keeps the plain default). gunicorn and
    uWSGI handle SIGTERM themselves. Under ``flask run --debug``
    the reloader's parent process kills the server outright, so td_web sends every 0.5 s there.

Typing
    ``request.telemetry`` is set on Flask's request object before any other ``before_request``
    function runs. Type checkers learn of it with ``cast("TelemetryRequest", request)``; or use
    ``td_web.current()``, typed and available anywhere inside the request.

Testing
    ``td_web.testing.capture()`` or the ``td_signals`` pytest fixture sees the signals of
    requests made with ``app.test_client()``; a complete body is recorded when the request
    returns, a streamed one when it is read to the end or closed.
"""

from __future__ import annotations

from typing import Protocol

from .._web import Telemetry
from .extension import TelemetryDeck
from .state import EXTENSION_KEY, AppTelemetry

__all__ = ["EXTENSION_KEY", "AppTelemetry", "TelemetryDeck", "TelemetryRequest"]


class TelemetryRequest(Protocol):
    """What td_web adds to Flask's request, for type checkers."""

    telemetry: Telemetry
