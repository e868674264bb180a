"""The tests written once for every adapter drive Django too: configured as for its own tests."""

from __future__ import annotations

from test_django.django_setup import _database, _fresh_telemetry  # noqa: F401  (fixtures)
