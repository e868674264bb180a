"""Traffic-source keys from the query string: ``combinedSource`` and the opt-in click ids."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

#: TelemetryDeck's order: the first of these present is the ``combinedSource``.
COMBINED_SOURCE_ORDER = ("ref", "source", "utm_source", "src")
#: Google's and Microsoft's per-click ad identifiers: each names one click, so they are sent
#: only with ``send_click_ids``.
CLICK_ID_PARAMETERS = {"gclid": "GCLID", "msclkid": "MSCLKID"}
_MAX_QUERY_LENGTH = 8192
_MAX_CLICK_ID_LENGTH = 256


def combined_source(campaign: Mapping[str, object]) -> dict[str, str]:
    """``combinedSource`` from the campaign parameters already picked out of the query."""
    for name in COMBINED_SOURCE_ORDER:
        value = campaign.get(name)
        if isinstance(value, str) and value:
            return {"combinedSource": value}
    return {}


def source_keys(
    campaign: Mapping[str, object], query_string: str, send_click_ids: bool
) -> dict[str, str]:
    """The traffic-source keys a request's payload gets after its campaign parameters:
    ``combinedSource``, then the click ids when they are sent."""
    keys = combined_source(campaign)
    if send_click_ids:
        keys.update(click_ids(query_string))
    return keys


def click_ids(query_string: str) -> dict[str, str]:
    """``GCLID`` and ``MSCLKID`` (first value of each, at most 256 characters)."""
    found: dict[str, str] = {}
    if not query_string or ("clid" not in query_string and "CLID" not in query_string):
        return found
    for key, value in parse_qsl(query_string[:_MAX_QUERY_LENGTH]):
        name = CLICK_ID_PARAMETERS.get(key.lower())
        if name is not None and name not in found and len(value) <= _MAX_CLICK_ID_LENGTH:
            found[name] = value
    return found
