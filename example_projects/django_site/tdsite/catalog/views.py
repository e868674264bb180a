from __future__ import annotations

from dataclasses import asdict

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render

from td_web.django import TelemetryHttpRequest

from .products import BY_ID, BY_SLUG, PRODUCTS


def product_list(request: TelemetryHttpRequest) -> HttpResponse:
    return render(request, "catalog/list.html", {"products": PRODUCTS})


def product_detail(request: TelemetryHttpRequest, slug: str) -> HttpResponse:
    product = BY_SLUG.get(slug)
    if product is None:
        raise Http404("no such product")
    return render(request, "catalog/detail.html", {"product": product})


def product_api(request: TelemetryHttpRequest, product_id: int) -> JsonResponse:
    product = BY_ID.get(product_id)
    if product is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse(asdict(product))
