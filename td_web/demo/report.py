"""The demo's closing summary: what arrived at the collector, as tables."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..collector import StoredSignal, StoredViolation
from .traffic import Tally

AUTOMATIC_TYPES = ("pageView", "HTTP.request")


@dataclass
class Summary:
    text: str
    ok: bool


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    body = [line(cells[0]), rule, *(line(row) for row in cells[1:])]
    return f"{title}\n" + "\n".join("  " + text for text in body)


def top(payloads: Sequence[dict[str, object]], key: str, count: int = 5) -> list[tuple[str, int]]:
    return Counter(str(p[key]) for p in payloads if key in p).most_common(count)


def summarize(
    signals: Sequence[StoredSignal], violations: Sequence[StoredViolation], tally: Tally
) -> Summary:
    types = Counter(s.type for s in signals)
    durations: dict[str, list[float]] = defaultdict(list)
    for s in signals:
        if s.type in AUTOMATIC_TYPES and s.route:
            # floatValue holds the duration in seconds at full precision.
            durations[s.route].append((s.float_value or s.duration or 0.0) * 1000)
    routes = sorted(durations.items(), key=lambda item: (-len(item[1]), item[0]))
    automatic = sum(types[t] for t in AUTOMATIC_TYPES)
    sessions = {s.session_id for s in signals}
    users = {s.client_user for s in signals}
    checks = [
        ("violations", len(violations), 0),
        ("requests tracked / automatic signals", tally.tracked, automatic),
        ("unhandled errors / error signals", tally.errors, types["TelemetryDeck.Error.occurred"]),
        *(
            (f"{name} sent / arrived", count, types[name])
            for name, count in sorted(tally.custom.items())
        ),
    ]
    ok = all(expected == actual for _, expected, actual in checks)
    views = [s.payload for s in signals if s.type == "pageView"]
    parts = [
        table("Signals by type", ("type", "count"), types.most_common()),
        table(
            "Routes (pageView and HTTP.request)",
            ("HTTP.route", "requests", "median ms"),
            [(route, len(ms), f"{statistics.median(ms):.1f}") for route, ms in routes],
        ),
        table(
            "Who",
            ("what", "count"),
            [
                ("sessions (one per visitor's cookie)", len(sessions)),
                ("distinct clientUser hashes", len(users)),
                ("requests sent by the traffic", tally.requests),
            ],
        ),
        *(
            table(f"Top {title} (page views)", (key, "count"), top(views, key))
            for title, key in (
                ("browsers", "browserName"),
                ("systems", "TelemetryDeck.Device.operatingSystem"),
                ("countries", "country.isoCode"),
            )
        ),
        table(
            "Checks",
            ("check", "expected", "arrived"),
            [(name, expected, actual) for name, expected, actual in checks],
        ),
    ]
    verdict = "all checks passed" if ok else "SOME CHECKS FAILED"
    parts.append(f"Violations: {len(violations)}. {verdict}.")
    return Summary("\n\n".join(parts), ok)
