"""The Flask extension: ``TelemetryDeck`` with ``init_app`` and ``user_loader``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app

from .._client import TelemetryDeck as Client
from .._option_values import require_sync_callable
from .._web import WebTelemetry
from .cli import telemetrydeck as telemetrydeck_commands
from .config import fallbacks, resolve_options
from .state import EXTENSION_KEY, AppTelemetry, state_for

#: ``@td.user_loader``: returns the signed-in user's identifier, or None for anonymous.
UserLoader = Callable[[], object]

LoaderT = TypeVar("LoaderT", bound=Callable[[], object])


class TelemetryDeck:
    """TelemetryDeck analytics for Flask apps.

    ::

        td = TelemetryDeck()

        def create_app():
            app = Flask(__name__)
            app.config["TELEMETRYDECK_APP_ID"] = "..."
            td.init_app(app)
            return app

    Every option is a ``TELEMETRYDECK_<NAME>`` config key (``TELEMETRYDECK_APP_ID``,
    ``TELEMETRYDECK_SALT``, ...) or a keyword argument here or to :meth:`init_app`, which
    wins over the config. One extension object serves any number of apps, each with its own
    configuration and client; it keeps no app of its own.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self._options = options
        self._user_loader: UserLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **options: Any) -> None:
        """Set td_web up for ``app`` (call it once per app, typically in the app factory)."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "td_web's TelemetryDeck is already registered on this Flask app "
                f"(app.extensions[{EXTENSION_KEY!r}]); call init_app() once per app"
            )
        resolved = resolve_options(app, self._options, options)
        web = WebTelemetry.from_options(
            resolved,
            fallbacks=fallbacks(app),
            source="the Flask extension's keyword arguments",
            framework_secret=app.secret_key,
        )
        state = AppTelemetry(self, web)
        state.install(app)
        app.cli.add_command(telemetrydeck_commands)  # flask telemetrydeck check|send
        app.extensions[EXTENSION_KEY] = state

    def user_loader(self, loader: LoaderT) -> LoaderT:
        """Decorator: the function returns the signed-in user's identifier (hashed before it
        is sent) or None; it runs inside the request. Without one, Flask-Login is used.
        An ``async def`` function is refused (``ConfigurationError``): Flask's request
        handling cannot await it."""
        require_sync_callable("user_loader", loader)
        self._user_loader = loader
        return loader

    @property
    def loaded_user_loader(self) -> UserLoader | None:
        return self._user_loader

    state_for = staticmethod(state_for)

    @property
    def client(self) -> Client:
        """The current app's client (``td.client.signal(...)`` outside a request, flush)."""
        return self.state_for(current_app).client
