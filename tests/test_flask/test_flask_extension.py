"""Flask's extension conventions: init_app, app.extensions, config keys, several apps."""

from __future__ import annotations

import gc
import signal
import weakref
from collections.abc import Callable

import pytest
from conftest import APP_ID
from flask import Flask

from td_web import ConfigurationError
from td_web import TelemetryDeck as Client
from td_web.flask import EXTENSION_KEY, AppTelemetry, TelemetryDeck
from td_web.testing import CapturedSignals

MakeApp = Callable[..., Flask]


def test_init_app_keeps_state_in_app_extensions_and_nothing_on_the_extension(
    make_app: MakeApp, td: TelemetryDeck
) -> None:
    app = make_app()
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, AppTelemetry)
    assert state.client.config.app_id == APP_ID
    assert not any(value is app for value in vars(td).values())
    with app.app_context():
        assert td.client is state.client


def test_constructor_with_app_initialises_it() -> None:
    app = Flask(__name__)
    app.config.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_HANDLE_SIGTERM=False)
    TelemetryDeck(app)
    assert EXTENSION_KEY in app.extensions


def test_registering_twice_is_a_clear_error(make_app: MakeApp, td: TelemetryDeck) -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="already registered on this Flask app"):
        td.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        TelemetryDeck().init_app(app)


def test_app_factory_gives_each_app_its_own_configuration(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    shop = make_app(namespace="com.example.shop", page_view_signal="Shop.pageView")
    blog = make_app(namespace="com.example.blog")
    for app in (shop, blog):
        app.add_url_rule("/ping-me", "ping", lambda: "ok")
    assert shop.extensions[EXTENSION_KEY].client is not blog.extensions[EXTENSION_KEY].client
    assert shop.extensions[EXTENSION_KEY].client.config.namespace == "com.example.shop"

    shop.test_client().get("/ping-me")
    blog.test_client().get("/ping-me")

    assert td_signals.of_type("Shop.pageView")[0]["payload"]["HTTP.route"] == "/ping-me"
    assert td_signals.of_type("pageView")[0]["payload"]["HTTP.route"] == "/ping-me"


def test_config_keys_are_read_and_keyword_arguments_win(td: TelemetryDeck) -> None:
    app = Flask(__name__)
    app.config.update(
        TELEMETRYDECK_APP_ID=APP_ID,
        TELEMETRYDECK_SALT="from-config",
        TELEMETRYDECK_NAMESPACE="com.example.config",
        TELEMETRYDECK_FLUSH_INTERVAL=0.5,
        TELEMETRYDECK_SESSION_COOKIE_NAME="td_config",
        TELEMETRYDECK_EXCLUDE_PATHS=["/admin/"],
        TELEMETRYDECK_HANDLE_SIGTERM=False,
    )
    td.init_app(app, namespace="com.example.argument")
    state = app.extensions[EXTENSION_KEY]
    assert state.client.config.salt == "from-config"
    assert state.client.config.flush_interval == 0.5
    assert state.client.config.namespace == "com.example.argument"
    assert state.web.settings.session_cookie_name == "td_config"
    assert state.web.settings.exclude_paths == ("/admin/",)


def test_constructor_options_apply_to_every_app_below_init_app_options() -> None:
    td = TelemetryDeck(salt="shared", namespace="com.example.shared", handle_sigterm=False)
    first, second = Flask(__name__), Flask(__name__)
    for app in (first, second):
        app.config["TELEMETRYDECK_APP_ID"] = APP_ID
    td.init_app(first)
    td.init_app(second, namespace="com.example.second")
    assert first.extensions[EXTENSION_KEY].client.config.namespace == "com.example.shared"
    assert second.extensions[EXTENSION_KEY].client.config.namespace == "com.example.second"
    assert second.extensions[EXTENSION_KEY].client.config.salt == "shared"


def test_an_existing_client_can_be_shared(td: TelemetryDeck) -> None:
    client = Client(app_id=APP_ID)
    app = Flask(__name__)
    app.config.update(TELEMETRYDECK_CLIENT=client, TELEMETRYDECK_HANDLE_SIGTERM=False)
    td.init_app(app)
    assert app.extensions[EXTENSION_KEY].client is client


def test_unknown_config_keys_are_named_in_the_error(td: TelemetryDeck) -> None:
    app = Flask(__name__)
    app.config.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_APPID="typo")
    with pytest.raises(ConfigurationError, match="TELEMETRYDECK_APPID"):
        td.init_app(app)
    assert EXTENSION_KEY not in app.extensions


def test_unknown_keyword_arguments_are_named_in_the_error(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="flush_intervall"):
        make_app(flush_intervall=1)


def test_a_bad_value_names_the_setting(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="session_cookie_samesite"):
        make_app(session_cookie_samesite="sometimes")


@pytest.mark.parametrize(
    ("debug", "testing", "expected"),
    [(False, False, False), (True, False, True), (False, True, True)],
)
def test_test_mode_defaults_to_the_apps_debug_or_testing_flag(
    td: TelemetryDeck, debug: bool, testing: bool, expected: bool
) -> None:
    app = Flask(__name__)
    app.config.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_HANDLE_SIGTERM=False)
    app.debug, app.testing = debug, testing
    td.init_app(app)
    assert app.extensions[EXTENSION_KEY].client.config.test_mode is expected


def test_environment_variables_are_the_fallback_and_config_wins(
    td: TelemetryDeck, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_SALT", "from-environment")
    monkeypatch.setenv("TELEMETRYDECK_TEST_MODE", "false")
    app = Flask(__name__)
    app.testing = True  # the environment wins over the testing fallback
    app.config.update(TELEMETRYDECK_NAMESPACE="com.example", TELEMETRYDECK_HANDLE_SIGTERM=False)
    td.init_app(app)
    config = app.extensions[EXTENSION_KEY].client.config
    assert (config.app_id, config.salt, config.test_mode) == (APP_ID, "from-environment", False)

    other = Flask(__name__)
    other.config.update(TELEMETRYDECK_SALT="from-config", TELEMETRYDECK_HANDLE_SIGTERM=False)
    td.init_app(other)
    assert other.extensions[EXTENSION_KEY].client.config.salt == "from-config"


def test_a_missing_app_id_is_a_clear_error(td: TelemetryDeck) -> None:
    with pytest.raises(ConfigurationError, match="TELEMETRYDECK_APP_ID"):
        td.init_app(Flask(__name__))


def test_disabled_still_gives_views_a_helper(
    td: TelemetryDeck, td_signals: CapturedSignals
) -> None:
    app = Flask(__name__)
    app.config["TELEMETRYDECK_ENABLED"] = False

    @app.get("/")
    def index() -> str:
        from flask import request

        sent = request.telemetry.signal("Nothing.sent")  # type: ignore[attr-defined]
        return f"sent={sent}"

    td.init_app(app)
    assert app.test_client().get("/").text == "sent=False"
    assert td_signals.types() == []


def test_sigterm_handler_is_installed_only_where_nothing_handles_it(td: TelemetryDeck) -> None:
    """What the handler does is tested in the core (test_core_shutdown.py), in a subprocess."""
    from td_web._shutdown import _flush_then_die

    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        app = Flask(__name__)
        app.config["TELEMETRYDECK_APP_ID"] = APP_ID
        td.init_app(app)
        assert signal.getsignal(signal.SIGTERM) is _flush_then_die

        def own_handler(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGTERM, own_handler)
        TelemetryDeck().init_app(Flask(__name__), app_id=APP_ID)
        assert signal.getsignal(signal.SIGTERM) is own_handler

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        TelemetryDeck().init_app(Flask(__name__), app_id=APP_ID, handle_sigterm=False)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)


def test_under_the_reloader_signals_are_sent_promptly_unless_configured(
    td: TelemetryDeck, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")  # the child process of flask run --debug
    reloaded = Flask(__name__)
    reloaded.config.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_HANDLE_SIGTERM=False)
    td.init_app(reloaded)
    assert reloaded.extensions[EXTENSION_KEY].client.config.flush_interval == 0.5

    configured = Flask(__name__)
    configured.config.update(
        TELEMETRYDECK_APP_ID=APP_ID,
        TELEMETRYDECK_HANDLE_SIGTERM=False,
        TELEMETRYDECK_FLUSH_INTERVAL=3,
    )
    td.init_app(configured)
    assert configured.extensions[EXTENSION_KEY].client.config.flush_interval == 3


def test_app_freed_on_zero_refcount(make_app: MakeApp, td_signals: CapturedSignals) -> None:
    """Modelled on Flask's own test: td_web adds no reference cycle through the app, so an
    app dropped by its owner is freed at once, without the cyclic garbage collector."""
    gc.disable()
    try:
        app = make_app()
        app.add_url_rule("/", "home", lambda: "<p>hello</p>")
        assert app.test_client().get("/").status_code == 200
        weak = weakref.ref(app)
        assert weak() is not None
        del app
        assert weak() is None
    finally:
        gc.enable()
    assert sorted(td_signals.types()) == ["TelemetryDeck.Session.started", "pageView"]
