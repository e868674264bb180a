from __future__ import annotations

from django.conf.urls.i18n import i18n_patterns
from django.urls import path

from . import views

urlpatterns = [
    path("plain/", views.plain),
    *i18n_patterns(
        path("about/", views.page),
        path("products/<int:item_id>/", views.item_json),
        prefix_default_language=True,
    ),
]
