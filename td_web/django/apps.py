"""The optional Django app: ``INSTALLED_APPS += ["td_web.django"]`` adds td_web's system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import register


class TdWebConfig(AppConfig):
    name = "td_web.django"
    label = "td_web"
    verbose_name = "TelemetryDeck (td_web)"

    def ready(self) -> None:
        from .checks import check_middleware, check_settings

        register(check_settings)
        register(check_middleware)
