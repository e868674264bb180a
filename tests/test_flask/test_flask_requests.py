"""request.telemetry, td_web.current(), HTTP.route from url_rule, static files, cookies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from conftest import (
    APP_ID,
    FORWARDED_CLIENTS,
    assert_forwarded_address_counts_only_when_trusted,
    cyclic_garbage,
)
from flask import Blueprint, Flask, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

import td_web
from td_web.flask import TelemetryDeck, TelemetryRequest
from td_web.testing import CapturedSignals

MakeApp = Callable[..., Flask]


def routes(signals: CapturedSignals) -> list[str | None]:
    return [
        s["payload"].get("HTTP.route") for s in signals if s["type"] in ("pageView", "HTTP.request")
    ]


def test_request_telemetry_sends_a_custom_signal_with_the_request_session(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()

    @app.post("/checkout")
    def checkout() -> str:
        telemetry = cast(TelemetryRequest, request).telemetry
        telemetry.signal("Checkout.completed", {"Cart.items": 3}, float_value=19.99)
        return "thanks"

    response = app.test_client().post("/checkout")

    assert response.status_code == 200
    checkout_signal = td_signals.one("Checkout.completed")
    assert checkout_signal["payload"]["Cart.items"] == "3"
    assert checkout_signal["payload"]["floatValue"] == 19.99
    request_signal = td_signals.one("HTTP.request")
    assert request_signal["payload"]["HTTP.method"] == "POST"
    assert checkout_signal["sessionID"] == request_signal["sessionID"]


def test_current_is_the_request_telemetry_anywhere_in_the_request(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()
    seen: dict[str, Any] = {}

    def deep_in_the_code() -> None:
        td_web.current().signal("Deep.called")

    @app.before_request
    def users_own_hook() -> None:
        seen["in before_request"] = getattr(request, "telemetry", None)

    @app.get("/")
    def index() -> str:
        seen["view"] = request.telemetry  # type: ignore[attr-defined]
        seen["current"] = td_web.current()
        deep_in_the_code()
        return "ok"

    app.test_client().get("/")

    assert seen["current"] is seen["view"] is seen["in before_request"]
    assert seen["view"].active
    assert td_web.current() is not seen["view"]  # not leaked past the request
    td_signals.one("Deep.called")


def test_request_telemetry_in_after_request_and_error_handlers(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        request.telemetry.signal("Page.missing")  # type: ignore[attr-defined]
        return "nothing here", 404

    @app.after_request
    def after(response: Any) -> Any:
        request.telemetry.signal("After.request")  # type: ignore[attr-defined]
        return response

    response = app.test_client().get("/nowhere")

    assert response.text == "nothing here"
    assert td_signals.types().count("Page.missing") == 1
    assert td_signals.types().count("After.request") == 1
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "404"
    assert "HTTP.route" not in td_signals.one("HTTP.request")["payload"]


def test_route_templates_from_url_rule_with_converters(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()

    @app.get("/items/<int:item_id>/<path:rest>")
    def item(item_id: int, rest: str) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/users/<name>")
    def user(name: str) -> dict[str, str]:
        return {"name": name}

    client = app.test_client()
    client.get("/items/3/a/b")
    client.get("/users/ada")

    assert routes(td_signals) == ["/items/{item_id}/{rest}", "/users/{name}"]
    assert td_signals.of_type("HTTP.request")[0]["payload"]["path"] == "/items/3/a/b"


def test_blueprints_with_url_prefixes_nested_blueprints_and_subdomains(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app(subdomain_matching=True)
    app.config["SERVER_NAME"] = "example.test"
    api = Blueprint("api", __name__, url_prefix="/api")
    v2 = Blueprint("v2", __name__, url_prefix="/v2")
    admin = Blueprint("admin", __name__, subdomain="admin")

    @v2.get("/orders/<uuid:order_id>")
    def order(order_id: Any) -> dict[str, str]:
        return {"id": str(order_id)}

    @admin.get("/users/<int:user_id>")
    def admin_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    api.register_blueprint(v2)
    app.register_blueprint(api)
    app.register_blueprint(admin, url_prefix="/manage")

    client = app.test_client()
    assert client.get("/api/v2/orders/6f1c2f0e-3d1a-4c7e-9a63-0b9a0f3c2d11").status_code == 200
    assert client.get("/manage/users/7", base_url="http://admin.example.test").status_code == 200

    assert routes(td_signals) == ["/api/v2/orders/{order_id}", "/manage/users/{user_id}"]
    assert td_signals.of_type("HTTP.request")[1]["payload"]["host"] == "admin.example.test"


def test_a_mounted_app_reports_full_paths_and_routes(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    mounted = DispatcherMiddleware(Flask("root"), {"/shop": app})
    response = Client(mounted).get("/shop/items/5")

    assert response.status_code == 200
    payload = td_signals.one("HTTP.request")["payload"]
    assert (payload["path"], payload["HTTP.route"]) == ("/shop/items/5", "/shop/items/{item_id}")


def test_static_files_of_the_app_and_its_blueprints_are_not_tracked(
    td_signals: CapturedSignals, tmp_path: Any
) -> None:
    (tmp_path / "app.css").write_text("body {}")
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/assets")
    admin = Blueprint("admin", __name__, static_folder=str(tmp_path), static_url_path="/files")

    @admin.get("/")
    def admin_home() -> str:
        return "admin"

    # Before the blueprint is registered, as in most app factories.
    TelemetryDeck().init_app(app, app_id=APP_ID, handle_sigterm=False)
    app.register_blueprint(admin, url_prefix="/admin")

    client = app.test_client()
    assert client.get("/assets/app.css").status_code == 200
    assert client.get("/admin/files/app.css").status_code == 200
    assert client.get("/static/anything.css").status_code == 404
    assert td_signals.types() == []
    client.get("/admin/")
    client.get("/assetsmanager")  # a prefix match stops at the slash
    assert routes(td_signals) == ["/admin/", None]


def test_a_session_cookie_is_set_and_kept(make_app: MakeApp, td_signals: CapturedSignals) -> None:
    app = make_app()
    app.add_url_rule("/", "index", lambda: "<p>hello</p>")
    client = app.test_client()

    first = client.get("/")
    second = client.get("/")

    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith("td_session=") and "HttpOnly" in cookie
    assert second.headers["Set-Cookie"].split(";")[0] == cookie.split(";")[0]
    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView", "pageView"]
    assert len({s["sessionID"] for s in td_signals}) == 1


def test_flask_session_cookie_and_user_headers_are_kept(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/")
    def index() -> Any:
        from flask import make_response, session

        session["seen"] = True
        response = make_response("ok")
        response.set_cookie("theme", "dark")
        return response

    cookies = app.test_client().get("/").headers.getlist("Set-Cookie")
    names = sorted(cookie.split("=")[0] for cookie in cookies)
    assert names == ["session", "td_session", "theme"]


def test_an_apps_own_td_session_cookie_wins(make_app: MakeApp) -> None:
    """A "forget me" view that deletes td_web's cookie must not have it set again."""
    app = make_app()

    @app.get("/forget-me")
    def forget_me() -> Any:
        from flask import make_response

        response = make_response("forgotten")
        response.delete_cookie("td_session")
        return response

    client = app.test_client()
    client.get("/forget-me")  # a first visit: td_web would start a session here
    cookies = client.get("/forget-me").headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    assert cookies[0].startswith("td_session=;")
    assert "Max-Age=0" in cookies[0] or "Expires=Thu, 01 Jan 1970" in cookies[0]


@pytest.mark.parametrize("path", ["/healthz", "/favicon.ico", "/robots.txt"])
def test_default_exclusions_apply(
    make_app: MakeApp, td_signals: CapturedSignals, path: str
) -> None:
    app = make_app()
    app.add_url_rule(path, "excluded", lambda: "ok")
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert td_signals.types() == []


def test_exclude_callable_gets_the_flask_request(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    seen: list[Any] = []

    def exclude(native: Any) -> bool:
        seen.append(native)
        return bool(native.args.get("skip"))

    app = make_app(exclude=exclude)

    @app.get("/")
    def index() -> str:
        assert seen[-1] is cast(Any, request)._get_current_object()
        return "ok"

    client = app.test_client()
    client.get("/?skip=1")
    assert td_signals.types() == []
    client.get("/")
    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView"]


def test_gpc_opt_out_sends_nothing_and_views_still_work(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app(respect_gpc=True)

    @app.get("/")
    def index() -> str:
        request.telemetry.signal("Opted.out")  # type: ignore[attr-defined]
        return "ok"

    response = app.test_client().get("/", headers={"Sec-GPC": "1"})
    assert response.text == "ok"
    assert "Set-Cookie" not in response.headers
    assert td_signals.types() == []


def test_request_telemetry_without_the_middleware_sends_custom_signals_only(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    app = make_app()
    with app.test_request_context("/"):
        app.preprocess_request()
        request.telemetry.signal("Direct.call")  # type: ignore[attr-defined]
    assert td_signals.types() == ["Direct.call"]


@pytest.mark.parametrize("proxy_fix_first", [True, False], ids=["before", "after"])
def test_proxy_fix_applies_whether_it_wraps_the_app_before_or_after_init_app(
    td_signals: CapturedSignals, proxy_fix_first: bool
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: "<p>hi</p>")
    if proxy_fix_first:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]
    TelemetryDeck().init_app(app, app_id=APP_ID, handle_sigterm=False)
    if not proxy_fix_first:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]

    response = app.test_client().get(
        "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    )

    payload = td_signals.one("pageView")["payload"]
    assert payload["url"] == "https://shop.example/"
    assert "Secure" in response.headers["Set-Cookie"]


def test_if_td_web_fails_to_start_a_request_the_view_still_runs(
    make_app: MakeApp,
    td_signals: CapturedSignals,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app()
    state = app.extensions["telemetrydeck"]

    def broken_begin(*args: object) -> None:
        raise RuntimeError("a bug in td_web")

    monkeypatch.setattr(state.web, "begin", broken_begin)

    @app.get("/")
    def index() -> str:
        sent = request.telemetry.signal("Still.callable")  # type: ignore[attr-defined]
        return f"sent={sent}"

    response = app.test_client().get("/")
    assert (response.status_code, response.text) == (200, "sent=False")
    assert "starting the request's telemetry failed" in caplog.text
    assert td_signals.types() == []


@pytest.mark.parametrize(
    ("options", "sent"), [({}, 4), ({"exclude_paths": ["/page"]}, 0)], ids=["tracked", "excluded"]
)
def test_a_request_leaves_no_reference_cycle_behind(
    make_app: MakeApp, td_signals: CapturedSignals, options: dict[str, Any], sent: int
) -> None:
    """request.telemetry holds the helper and the helper held the request: every request was
    left to the cyclic garbage collector. The helper lets go of it once its record is queued;
    an excluded one (``exclude_paths``, static files), which sends nothing by itself but may
    still send a custom signal, holds it weakly once the request ends (it was 10,000 objects
    per 1,000 excluded requests)."""
    app = make_app(**options)

    @app.get("/page")
    def page() -> str:
        return "<p>page</p>"

    client = app.test_client()
    client.get("/page")
    with cyclic_garbage() as garbage:
        for _ in range(3):
            assert client.get("/page").status_code == 200
    assert [type(o).__name__ for o in garbage if isinstance(o, td_web.Telemetry)] == []
    assert td_signals.types().count("HTTP.request") + td_signals.types().count("pageView") == sent


def test_a_signal_after_an_excluded_request_ended_gets_properties_from_the_request(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    """A job an excluded request started (given ``request.telemetry``) signals after the
    request is gone: a callable ``default_payload`` is still given Flask's request, as the
    README promises, never td_web's own view of it (nor left out)."""
    given: list[str] = []

    def properties(req: Any) -> dict[str, str]:
        given.append(type(req).__name__)  # (the request itself is not kept here)
        return {"Job.kind": str(req.headers["X-Kind"])}

    app = make_app(exclude_paths=["/start-job"], default_payload=properties)
    jobs: list[Any] = []

    @app.post("/start-job")
    def start_job() -> str:
        jobs.append(request.telemetry)  # type: ignore[attr-defined]
        return "started"

    assert app.test_client().post("/start-job", headers={"X-Kind": "export"}).status_code == 200
    jobs[0].signal("Job.done")  # later, on the job's thread: the request has ended

    assert given == ["Request"]
    assert td_signals.one("Job.done")["payload"]["Job.kind"] == "export"


def test_the_forwarded_address_counts_only_with_trusted_proxies(
    make_app: MakeApp,
    td_signals: CapturedSignals,
    begun_forwarding: list[tuple[str | None, ...]],
) -> None:
    """One rule in the core (``WebTelemetry.reads_forwarding``): with ``trusted_proxies`` the
    forwarded client address decides the (cookieless) session; without it the forwarding
    headers are not even read into the view, so nothing of them is queued."""
    for trusted in (1, None):
        app = make_app(cookieless=True, trusted_proxies=trusted)
        app.add_url_rule("/", "index", lambda: "<p>hi</p>")
        for address in FORWARDED_CLIENTS:
            app.test_client().get("/", headers={"X-Forwarded-For": address})

    assert_forwarded_address_counts_only_when_trusted(begun_forwarding, td_signals)
