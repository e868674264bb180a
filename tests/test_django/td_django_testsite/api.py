"""Django REST framework and django-ninja routes, included under prefixes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI
from rest_framework import routers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response


class WidgetViewSet(viewsets.ViewSet):
    def list(self, request: Request, format: str | None = None) -> Response:
        return Response([{"id": 1}])

    def retrieve(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        request.telemetry.signal("Widget.viewed")
        return Response({"id": pk})


router = routers.DefaultRouter()
router.register("widgets", WidgetViewSet, basename="widget")

ninja_api = NinjaAPI(urls_namespace="td_test_ninja")


@ninja_api.get("/orders/{order_id}")
def order(request: HttpRequest, order_id: int) -> dict[str, Any]:
    return {"id": order_id}


@ninja_api.get("/shops/{shop}/orders/{order_id}")
def shop_order(request: HttpRequest, shop: str, order_id: int) -> dict[str, Any]:
    return {"shop": shop, "id": order_id}
