from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("contact/", views.contact, name="contact"),
    path("contact/thanks/", views.contact_thanks, name="contact-thanks"),
    path("checkout/", views.checkout, name="checkout"),
    path("invoice/", views.invoice, name="invoice"),
    path("catalog/", include("tdsite.catalog.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("boom/", views.boom, name="boom"),
    path("export.csv", views.export_csv, name="export"),
    path("api/status/", views.status, name="status"),
    path("healthz", views.healthz, name="healthz"),
]
