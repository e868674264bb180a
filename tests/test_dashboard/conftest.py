"""Each dashboard test closes the clients its apps built, so that no sender's thread outlives
the test (a module's fixture closes its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_dashboard.dashboard_support import built, close_clients


@pytest.fixture(autouse=True)
def _close_each_client() -> Iterator[None]:
    first = len(built)
    yield
    close_clients(first)
