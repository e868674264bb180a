"""The web-dashboard panels of the live page: what TelemetryDeck's own web dashboard would show
for the latest page views (browsers, systems, device types, countries, sources, new versus
returning visitors, page views by hour of day)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .store import SignalFilter, SignalStore

#: The panels read the latest this many page views and session starts.
SAMPLE = 5000
PAGE_VIEW = "pageView"
SESSION_STARTED = "TelemetryDeck.Session.started"
_DEVICE_TYPES = (("isBot", "bot"), ("isTablet", "tablet"), ("isMobile", "phone"))


def dashboard(store: SignalStore, where: SignalFilter, top: int = 10) -> dict[str, Any]:
    views = [
        stored.payload
        for stored in store.signals(
            SignalFilter(PAGE_VIEW, where.session, where.test_mode), limit=SAMPLE, newest_first=True
        )
    ]
    starts = [
        stored.payload
        for stored in store.signals(
            SignalFilter(SESSION_STARTED, where.session, where.test_mode),
            limit=SAMPLE,
            newest_first=True,
        )
    ]
    browsers = Counter(str(p["browserName"]) for p in views if "browserName" in p)
    systems = Counter(
        str(p["TelemetryDeck.Device.operatingSystem"])
        for p in views
        if "TelemetryDeck.Device.operatingSystem" in p
    )
    devices = Counter(_device_type(p) for p in views if "isDesktop" in p)
    countries = Counter(str(p["country.isoCode"]) for p in views if "country.isoCode" in p)
    sources = Counter(_source(p) for p in views)
    hours = Counter(str(p.get("TelemetryDeck.Calendar.hourOfDay", "")) for p in views)
    visitors = Counter(_visitor(p) for p in starts)
    visitors.pop("unknown", None)
    return {
        "page_views": len(views),
        "browsers": _rows(browsers, top),
        "systems": _rows(systems, top),
        "device_types": _rows(devices, top),
        "countries": _rows(countries, top),
        "sources": _rows(sources, top),
        "visitors": _rows(visitors, top),
        "views_by_hour": [
            {"hour": hour, "count": hours.get(str(hour), 0)} for hour in range(1, 25)
        ],
    }


def _device_type(payload: dict[str, Any]) -> str:
    for key, name in _DEVICE_TYPES:
        if payload.get(key) == "true":
            return name
    return "desktop" if payload.get("isDesktop") == "true" else "other"


def _source(payload: dict[str, Any]) -> str:
    source = payload.get("combinedSource")
    if source:
        return str(source)
    referer = payload.get("referer")
    if isinstance(referer, str) and "://" in referer:
        host = referer.split("://", 1)[1].split("/", 1)[0]
        if host and host != payload.get("host"):
            return host
    return "direct"


def _visitor(payload: dict[str, Any]) -> str:
    count = payload.get("TelemetryDeck.Retention.totalSessionsCount")
    if count is None:
        return "unknown"
    return "new" if str(count) == "1" else "returning"


def _rows(counts: Counter[str], top: int) -> list[dict[str, Any]]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"name": name, "count": count} for name, count in ordered]
