"""The ``TelemetryDeck.Calendar.*`` keys for the moment a signal is built.

Computed on the sender thread and reused for a quarter of an hour (every time zone's offset is
a whole number of quarter hours, so no calendar key changes inside one): a clock read per
signal.
"""

from __future__ import annotations

import datetime as _dt
import time
import zoneinfo
from collections.abc import Callable, Mapping

Keys = Mapping[str, str]


class CalendarKeys:
    """Calendar keys in one time zone, recomputed each quarter hour."""

    __slots__ = ("_clock", "_keys", "_quarter", "_zone")

    def __init__(self, time_zone: str = "UTC", clock: Callable[[], float] = time.time) -> None:
        self._zone = _dt.timezone.utc if time_zone == "UTC" else zoneinfo.ZoneInfo(time_zone)
        self._clock = clock
        self._quarter = -1.0
        self._keys: Keys = {}

    def __call__(self) -> Keys:
        now = self._clock()
        quarter = now - now % 900
        if quarter != self._quarter:
            self._keys = calendar_keys(_dt.datetime.fromtimestamp(now, self._zone))
            self._quarter = quarter
        return self._keys


def calendar_keys(moment: _dt.datetime) -> dict[str, str]:
    _year, week, weekday = moment.isocalendar()
    return {
        "TelemetryDeck.Calendar.dayOfMonth": str(moment.day),
        "TelemetryDeck.Calendar.dayOfWeek": str(weekday),
        "TelemetryDeck.Calendar.dayOfYear": str(moment.timetuple().tm_yday),
        "TelemetryDeck.Calendar.weekOfYear": str(week),
        "TelemetryDeck.Calendar.isWeekend": "true" if weekday >= 6 else "false",
        "TelemetryDeck.Calendar.monthOfYear": str(moment.month),
        "TelemetryDeck.Calendar.quarterOfYear": str((moment.month - 1) // 3 + 1),
        # TelemetryDeck counts hours from 1: 00:00-00:59 is hour 1, 23:00-23:59 hour 24.
        "TelemetryDeck.Calendar.hourOfDay": str(moment.hour + 1),
    }
