"""The "users in control" options (issue #16), every scenario (control_scenarios,
integration_scenarios) run the same way through each adapter's real machinery (the sites:
``control_*.py``), configured the framework's way, its signals read from the real local ingest
server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import control_scenarios
import integration_scenarios
import pytest
from ingest_server import IngestServer
from test_adapters import control_asgi, control_django, control_flask

SITE_MAKERS = {
    "asgi": control_asgi.site_maker,
    "django": control_django.site_maker,
    "flask": control_flask.site_maker,
}


@pytest.fixture(params=list(SITE_MAKERS))
def make_site(request: pytest.FixtureRequest, ingest: IngestServer) -> Iterator[Callable[..., Any]]:
    with ExitStack() as stack:
        yield SITE_MAKERS[request.param](ingest, stack)


@pytest.mark.parametrize(
    "scenario",
    [*control_scenarios.SCENARIOS, *integration_scenarios.SCENARIOS],
    ids=lambda s: s.__name__,
)
def test_control(
    scenario: Callable[..., None],
    make_site: Callable[..., Any],
    ingest: IngestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    control_scenarios.run(scenario, make_site, ingest, caplog)
