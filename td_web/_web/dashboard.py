"""The keys TelemetryDeck's web dashboard reads beyond the request itself: device (from the
User-Agent), country, traffic source. Built on the sender thread from the request's raw strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .device import DeviceParser, Keys
from .geo import Geo
from .settings import WebSettings
from .sources import source_keys

if TYPE_CHECKING:
    from . import RequestView
    from .exclusions import Exclusions

_NO_KEYS: Keys = {}


class DashboardKeys:
    def __init__(self, settings: WebSettings, exclusions: Exclusions) -> None:
        self.device = DeviceParser() if settings.device_keys else None
        self.geo = Geo(settings.country_headers, settings.geoip_database)
        self._click_ids = settings.send_click_ids
        self._track_bots = settings.track_bots
        self._exclusions = exclusions

    def request_keys(self, view: RequestView, payload: dict[str, Any]) -> dict[str, str] | None:
        """Device and country keys for a request's automatic signals (plain ASCII text, for
        :meth:`SignalBuilder.build`'s ``clean_payload``), or None when the library recognises
        a crawler that today's bot expression let through (and bots are not tracked). The
        traffic-source keys, the client's own text, go into ``payload`` (sanitized later)."""
        parts = self.request_parts(view, payload)
        if parts is None:
            return None
        device, country = parts
        return {**device, **country}

    def request_parts(self, view: RequestView, payload: dict[str, Any]) -> tuple[Keys, Keys] | None:
        """:meth:`request_keys` in its two parts: the device keys (the parser's mapping for
        this browser, the same object each time: never change it) and the country keys."""
        device: Keys = _NO_KEYS
        user_agent = view.user_agent
        if self.device is not None and user_agent:
            device = self.device.keys(user_agent)
            if device.get("isBot") == "true":
                if not self._track_bots:
                    return None
            elif device and self._track_bots and self._exclusions.is_bot(user_agent):
                # Headless browsers, monitors and link previewers: uap-core calls them
                # browsers, td_web's own list knows better. (Without track_bots the request
                # path has already excluded whatever the list matches.)
                as_bot = {**device, "isBot": "true", "isMobile": "false", "isTablet": "false"}
                as_bot["isDesktop"] = as_bot["isTouchCapable"] = "false"
                device = as_bot
        country = self.geo.keys(view.countries, view.client_addr) if self.geo.enabled else _NO_KEYS
        if payload and view.query_string:  # both come from the query's parameters only
            payload.update(source_keys(payload, view.query_string, self._click_ids))
        return device, country
