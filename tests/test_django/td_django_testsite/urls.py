from __future__ import annotations

from django.urls import include, path, re_path

from . import api, views

shop_patterns = [
    path("items/<int:item_id>/", views.item_json),
    re_path(r"^legacy/(?P<code>[A-Z]{3})-(?P<number>\d+)/$", views.page),
]

urlpatterns = [
    path("", views.home),
    path("items/<int:item_id>/", views.item_json),
    path("pages/<slug:slug>/", views.page),
    re_path(r"^archive/(?P<year>[0-9]{4})/(?P<month>[0-9]{2})/$", views.page),
    path("shop/<slug:shop>/", include(shop_patterns)),
    re_path(r"^regex-shop/", include(shop_patterns)),
    path("drf/", include(api.router.urls)),
    path("ninja/", api.ninja_api.urls),
    path("checkout/", views.checkout),
    path("current/", views.via_current),
    path("touch-user/", views.touch_user),
    path("plain/", views.plain),
    path("login/", views.do_login),
    path("boom/", views.boom),
    path("missing/<int:item_id>/", views.missing),
    path("forbidden/", views.forbidden),
    path("own-cookies/", views.own_cookies),
    path("one-own-cookie/", views.one_own_cookie),
    path("stream/", views.stream),
    path("stream-fails/", views.stream_fails),
    path("file/", views.file_download),
    path("async/", views.async_home),
    path("async/checkout/", views.async_checkout),
    path("async/auser/", views.async_auser),
    path("async/user-in-a-thread/", views.async_user_in_a_thread),
    path("async/plain/", views.async_plain),
    path("async/boom/", views.async_boom),
    path("async/stream/", views.async_stream),
    path("async/stream-stalls/", views.async_stream_stalls),
]
