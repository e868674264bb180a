from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class TdSiteConfig(AppConfig):
    name = "tdsite"
    verbose_name = "td_web example site"

    def ready(self) -> None:
        post_migrate.connect(ensure_demo_user, dispatch_uid="tdsite.ensure_demo_user")


def ensure_demo_user(app_config: AppConfig, **kwargs: Any) -> None:
    """``manage.py migrate`` leaves a user to log in with: demo / demo-password."""
    if app_config.label != "auth":  # post_migrate is sent per app with models; tdsite has none
        return
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_USERNAME).exists():
        user_model.objects.create_user(DEMO_USERNAME, password=DEMO_PASSWORD)
