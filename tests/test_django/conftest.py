"""Django is configured once for this directory's tests: a temporary SQLite database, the test
site in ``td_django_testsite`` and td_web's middleware first in ``MIDDLEWARE``."""

from __future__ import annotations

from typing import Any

import pytest
from test_django.django_setup import _database, _fresh_telemetry  # noqa: F401  (fixtures)


@pytest.fixture
def alice() -> Any:
    from django.contrib.auth.models import User

    user, created = User.objects.get_or_create(username="alice")
    if created:
        user.set_password("wonderland")
        user.save()
    return user
