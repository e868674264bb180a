"""``request.telemetry`` is typed for users through ``TelemetryHttpRequest``: mypy (with
django-stubs, the project's strict configuration) accepts correct use and flags misuse."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

VIEWS = """
from django.http import HttpResponse
from td_web.django import TelemetryHttpRequest


def checkout(request: TelemetryHttpRequest) -> HttpResponse:
    sent: bool = request.telemetry.signal(
        "Checkout.completed", {"Cart.items": 3}, float_value=19.99
    )
    return HttpResponse(str(sent), status=200 if request.telemetry.active else 204)


def misuse(request: TelemetryHttpRequest) -> None:
    request.telemetry.signal(42)
    request.telemetry.no_such_method()
"""

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_request_telemetry_is_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api")
    try:
        importlib.metadata.version("django-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("django-stubs is not installed")

    views = tmp_path / "views.py"
    views.write_text(VIEWS)
    monkeypatch.chdir(ROOT)  # the project's mypy configuration and its warm cache
    stdout, stderr, status = api.run(["--no-error-summary", str(views)])

    errors = [line.split(": error: ")[1] for line in stdout.splitlines() if ": error: " in line]
    lines = [int(line.split(":")[1]) for line in stdout.splitlines() if ": error: " in line]
    assert status == 1, stderr
    assert lines == [14, 15], stdout
    assert '"signal" of "Telemetry" has incompatible type "int"' in errors[0]
    assert '"Telemetry" has no attribute "no_such_method"' in errors[1]
