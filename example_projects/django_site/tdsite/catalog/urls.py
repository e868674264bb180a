from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("products/<slug:slug>/", views.product_detail, name="product-detail"),
    path("api/products/<int:product_id>/", views.product_api, name="product-api"),
]
