"""pytest plugin, registered through the ``pytest11`` entry point: the ``td_signals`` fixture.

::

    def test_home_page_view(client, td_signals):
        client.get("/")
        assert td_signals.one("pageView")["payload"]["HTTP.route"] == "/"
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import CapturedSignals, capture


@pytest.fixture
def td_signals() -> Iterator[CapturedSignals]:
    """Every signal any td_web client builds during the test, captured instead of sent."""
    with capture() as signals:
        yield signals
