"""``HTTP.route`` from Django's resolver: converters, regexes, include() prefixes, i18n, DRF and
django-ninja, and no route when nothing matched."""

from __future__ import annotations

import pytest
from django.test import AsyncClient, Client, RequestFactory, override_settings
from td_django_helpers import MIDDLEWARE

from td_web.django.request_view import route_template
from td_web.testing import CapturedSignals

I18N_MIDDLEWARE = [
    *MIDDLEWARE[:2],
    "django.middleware.locale.LocaleMiddleware",
    *MIDDLEWARE[2:],
]


def _route(signals: CapturedSignals) -> str | None:
    [signal] = [s for s in signals if s["type"] in ("pageView", "HTTP.request")]
    route: str | None = signal["payload"].get("HTTP.route")
    return route


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/", "/"),
        ("/items/42/", "/items/{item_id}/"),
        ("/pages/about-us/", "/pages/{slug}/"),
        ("/archive/2024/05/", "/archive/{year}/{month}/"),
        ("/shop/tea/items/7/", "/shop/{shop}/items/{item_id}/"),
        ("/shop/tea/legacy/ABC-12/", "/shop/{shop}/legacy/{code}-{number}/"),
        ("/regex-shop/items/7/", "/regex-shop/items/{item_id}/"),
        ("/regex-shop/legacy/XYZ-1/", "/regex-shop/legacy/{code}-{number}/"),
    ],
)
def test_route_templates(td_signals: CapturedSignals, path: str, route: str) -> None:
    response = Client().get(path)

    assert response.status_code == 200
    assert _route(td_signals) == route


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/drf/widgets/", "/drf/widgets/"),
        ("/drf/widgets/5/", "/drf/widgets/{pk}/"),
        ("/drf/widgets/5.json", "/drf/widgets/{pk}.{format}/"),
        ("/ninja/orders/12", "/ninja/orders/{order_id}"),
        ("/ninja/shops/tea/orders/12", "/ninja/shops/{shop}/orders/{order_id}"),
    ],
)
def test_rest_framework_and_ninja_routes(
    td_signals: CapturedSignals, path: str, route: str
) -> None:
    response = Client().get(path)

    assert response.status_code == 200
    assert _route(td_signals) == route


def test_rest_framework_request_has_telemetry(td_signals: CapturedSignals) -> None:
    Client().get("/drf/widgets/5/")

    assert (
        td_signals.one("Widget.viewed")["sessionID"] == td_signals.one("HTTP.request")["sessionID"]
    )


async def test_async_view_route(td_signals: CapturedSignals) -> None:
    await AsyncClient().get("/async/checkout/")

    assert _route(td_signals) == "/async/checkout/"


def test_unmatched_url_has_no_route(td_signals: CapturedSignals) -> None:
    response = Client().get("/no/such/page/")

    assert response.status_code == 404
    signal = td_signals.one("HTTP.request")
    assert signal["payload"]["HTTP.statusCode"] == "404"
    assert "HTTP.route" not in signal["payload"]


def test_matched_route_that_raises_404_keeps_its_route(td_signals: CapturedSignals) -> None:
    Client().get("/missing/3/")

    signal = td_signals.one("HTTP.request")
    assert signal["payload"]["HTTP.statusCode"] == "404"
    assert signal["payload"]["HTTP.route"] == "/missing/{item_id}/"


@override_settings(ROOT_URLCONF="td_django_testsite.i18n_urls", MIDDLEWARE=I18N_MIDDLEWARE)
@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/en/about/", "/{language}/about/"),
        ("/de/about/", "/{language}/about/"),
        ("/pt-br/products/3/", "/{language}/products/{item_id}/"),
        ("/plain/", "/plain/"),
    ],
)
def test_i18n_patterns_route_has_a_language_placeholder(
    td_signals: CapturedSignals, path: str, route: str
) -> None:
    response = Client().get(path)

    assert response.status_code == 200
    assert _route(td_signals) == route
    assert td_signals.of_type(td_signals.types()[-1])[0]["payload"]["path"] == path


@override_settings(ROOT_URLCONF="td_django_testsite.i18n_urls", MIDDLEWARE=I18N_MIDDLEWARE)
def test_locale_redirect_is_seen_when_the_middleware_comes_first(
    td_signals: CapturedSignals,
) -> None:
    response = Client().get("/about/", headers={"Accept-Language": "de"})

    assert response.status_code == 302
    assert td_signals.one("HTTP.request")["payload"]["HTTP.statusCode"] == "302"


def test_route_template_from_a_request_factory_request() -> None:
    """The raw template handed to the core, as Django's resolver reports it."""
    from django.urls import resolve

    request = RequestFactory().get("/shop/tea/items/7/")
    request.resolver_match = resolve(request.path_info)

    assert route_template(request) == "shop/<slug:shop>/items/<int:item_id>/"
    assert route_template(RequestFactory().get("/nowhere/")) is None
