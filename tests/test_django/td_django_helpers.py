"""Settings and helpers shared by the Django adapter tests."""

from __future__ import annotations

from typing import Any

from conftest import APP_ID
from ingest_server import free_port

from td_web import hash_client_user

SALT = "django-test-salt"
#: Nothing listens there: a test that forgets capture() cannot reach the network.
DEAD_ENDPOINT = f"http://127.0.0.1:{free_port()}"
TELEMETRYDECK = {
    "APP_ID": APP_ID,
    "SALT": SALT,
    "ENDPOINT": DEAD_ENDPOINT,
    "SHUTDOWN_TIMEOUT": 0.5,
}
MIDDLEWARE = [
    "td_web.django.TelemetryDeckMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
BASE_SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "td_web-django-tests",
    "ALLOWED_HOSTS": ["testserver", "localhost", "127.0.0.1", "example.com"],
    "ROOT_URLCONF": "td_django_testsite.urls",
    "INSTALLED_APPS": [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "rest_framework",
        "td_web.django",
    ],
    "MIDDLEWARE": MIDDLEWARE,
    "TELEMETRYDECK": TELEMETRYDECK,
    "USE_TZ": True,
    "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
    "LANGUAGES": [("en", "English"), ("de", "German"), ("pt-br", "Brazilian Portuguese")],
    "LANGUAGE_CODE": "en",
    "STATIC_URL": "/static/",
    "MEDIA_URL": "/media/",
    "REST_FRAMEWORK": {"UNAUTHENTICATED_USER": None},
}


def user_hash(user: Any) -> str:
    return hash_client_user(str(user.pk), SALT)


def telemetry_settings(**overrides: Any) -> dict[str, Any]:
    """``TELEMETRYDECK`` with some keys replaced (None means "not given", as in settings)."""
    return {**TELEMETRYDECK, **overrides}
