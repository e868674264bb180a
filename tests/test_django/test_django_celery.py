"""td_web.celery.setup(app) in a Django project reads TELEMETRYDECK and TELEMETRYDECK_CELERY."""

from __future__ import annotations

import pytest
from celery import Celery
from conftest import APP_ID
from django.test import override_settings

import td_web.celery
from td_web import ConfigurationError
from td_web.celery._options import build_client


@override_settings(
    DEBUG=True,
    TELEMETRYDECK={"APP_ID": APP_ID, "SALT": "site-salt", "COOKIELESS": True},
    TELEMETRYDECK_CELERY={"TASK_SIGNAL": None, "FLUSH_INTERVAL": 0.5},
)
def test_setup_without_arguments_reads_the_django_settings() -> None:
    app = Celery("django_settings_test")
    try:
        integration = td_web.celery.setup(app)
        assert integration.options.task_signal is None
        client = build_client(integration.options)
        # The client's keys of TELEMETRYDECK, overridden for workers by TELEMETRYDECK_CELERY;
        # request-only keys (COOKIELESS) ignored; TEST_MODE defaults to DEBUG.
        assert (client.config.app_id, client.config.salt) == (APP_ID, "site-salt")
        assert client.config.flush_interval == 0.5
        assert client.config.test_mode is True
        # Keyword arguments win over the settings.
        explicit = td_web.celery.setup(app, task_signal="Worker.task", salt="other")
        assert explicit.options.task_signal == "Worker.task"
        assert build_client(explicit.options).config.salt == "other"
    finally:
        td_web.celery.teardown(app)


@override_settings(TELEMETRYDECK={"APP_ID": APP_ID}, TELEMETRYDECK_CELERY={"TASK_SINGAL": "x"})
def test_an_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="task_singal"):
        td_web.celery.setup(Celery("django_settings_typo"))
