"""Django, configured once per test process: a temporary SQLite database, the test site in
``td_django_testsite`` and td_web's middleware first in ``MIDDLEWARE``. Imported by the
conftest of every directory whose tests drive Django (its fixtures come with it)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

# Appended, not prepended: `tests/` must stay first (other suites import its conftest by name).
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))

from td_django_helpers import BASE_SETTINGS

_database_dir = tempfile.mkdtemp(prefix="td_web_django_tests_")

if not settings.configured:
    settings.configure(
        **BASE_SETTINGS,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(Path(_database_dir) / "db.sqlite3"),
            }
        },
    )
    django.setup()


@pytest.fixture(scope="session", autouse=True)
def _database() -> Iterator[None]:
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    yield
    shutil.rmtree(_database_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test builds anew (the suite's conftest keeps TELEMETRYDECK_* variables out)."""
    from td_web.django import runtime

    runtime.reset()
    yield
    runtime.reset()
