"""Settings of the example site, all overridable from the environment.

By default it sends to a local collector (``td-web collect --port 8787``), never to
TelemetryDeck itself: set ``TELEMETRYDECK_ENDPOINT`` and ``TELEMETRYDECK_APP_ID`` for that.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

#: The demo's app id; TelemetryDeck ignores it, a local collector accepts it.
DEMO_APP_ID = "5A5E1F1E-DE70-4D7A-9F1B-2C3D4E5F6A7B"
LOCAL_COLLECTOR = "http://127.0.0.1:8787"


def _flag(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes")


DEBUG = _flag("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-site-only-not-a-secret")
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "td_web.django",
    "tdsite",
    "tdsite.catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "td_web.django.TelemetryDeckMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tdsite.urls"
WSGI_APPLICATION = "tdsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SITE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
USE_TZ = True
STATIC_URL = "static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "account"
LOGOUT_REDIRECT_URL = "home"

# td_web: every key is optional here; TELEMETRYDECK_* environment variables fill the gaps
# (APP_ID, SALT, ENDPOINT, NAMESPACE, TEST_MODE, ENABLED, APP_VERSION). TEST_MODE follows DEBUG.
TELEMETRYDECK = {
    "APP_ID": os.environ.get("TELEMETRYDECK_APP_ID", DEMO_APP_ID),
    "ENDPOINT": os.environ.get("TELEMETRYDECK_ENDPOINT", LOCAL_COLLECTOR),
    "SALT": os.environ.get("TELEMETRYDECK_SALT", "example-site-salt"),
    "FLUSH_INTERVAL": float(os.environ.get("TELEMETRYDECK_FLUSH_INTERVAL", "2")),
    "APP_VERSION": "1.0",
    # The dashboard keys: this site pretends to run behind Cloudflare (trust its country
    # header only when that is true), counts new and returning visitors with td_web's signed
    # visitor cookie, and says which deployment it is.
    "COUNTRY_HEADERS": ["CF-IPCountry"],
    "VISITOR_COOKIE": True,
    "ENVIRONMENT": os.environ.get("TELEMETRYDECK_ENVIRONMENT", "demo"),
}

# Celery (tdsite/celery.py): with CELERY_BROKER_URL set (redis://127.0.0.1:6379/0), /invoice/
# hands its work to a worker (`celery -A tdsite worker`); without one it runs in the request.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_IGNORE_RESULT = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"td_web": {"handlers": ["console"], "level": "INFO"}},
}
