"""Two User-Agent parsing libraries on the same real headers: how often each is right, and
what one parse costs.

    .venv/bin/python bench/user_agents.py [--repeat 3]

Candidates: ``ua-parser`` (uap-core's rules; its compiled ``ua-parser-rs`` matcher when
installed), which td_web uses, and ``device-detector`` (a Python port of Matomo's detector).
Each is scored on the cases of ``tests/user_agent_cases.py`` for the facts the dashboard shows
whatever a library calls them: the form factor (desktop, mobile, tablet, bot, other), the
operating system, the browser's and the system's major versions, and whether td_web's own bot
regular expression agrees. Cost is the median time of one uncached parse (every header made
unique), and the time of the first parse in a fresh process (loading the rules).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from user_agent_cases import CASES

from td_web._web.device import DeviceParser
from td_web._web.exclusions import BOT_USER_AGENT

#: Facts: (form factor, system, browser major, system major).
Facts = tuple[str, str, str, str]

_DD_SYSTEMS = {"Mac": "macOS", "GNU/Linux": "Linux", "Chrome OS": "ChromeOS"}


_UA_PARSER = DeviceParser()


def ua_parser_facts(user_agent: str) -> Facts:
    keys = _UA_PARSER._keys_uncached(user_agent)
    kind = next(
        (
            name
            for name in ("bot", "mobile", "tablet", "desktop")
            if keys.get(_FLAG[name]) == "true"
        ),
        "other",
    )
    return (
        kind,
        keys.get("TelemetryDeck.Device.operatingSystem", ""),
        keys.get("browserVersion", "").split(".")[0],
        keys.get("majorSystemVersion", ""),
    )


_FLAG = {"bot": "isBot", "mobile": "isMobile", "tablet": "isTablet", "desktop": "isDesktop"}


def device_detector_facts(user_agent: str) -> Facts:
    from device_detector import DeviceDetector

    parsed = DeviceDetector(user_agent).parse()
    if parsed.is_bot():
        kind = "bot"
    else:
        kind = {"smartphone": "mobile", "tablet": "tablet", "desktop": "desktop"}.get(
            parsed.device_type(), "other"
        )
    system = parsed.os_name() or ""
    return (
        kind,
        _DD_SYSTEMS.get(system, system),
        (parsed.client_version() or "").split(".")[0],
        (parsed.os_version() or "").split(".")[0],
    )


def score(facts: Callable[[str], Facts]) -> tuple[int, list[str]]:
    right, wrong = 0, []
    for case in CASES:
        expected = (case.kind, case.system, case.browser_major, case.system_major)
        got = facts(case.user_agent)
        fields = sum(a == b for a, b in zip(got, expected, strict=True))
        right += fields
        if fields < 4:
            wrong.append(f"{case.name}: got {got}, expected {expected}")
    return right, wrong


def cost_us(facts: Callable[[str], Facts], repeat: int) -> float:
    samples = []
    for round_number in range(repeat):
        for index, case in enumerate(CASES):
            unique = f"{case.user_agent} r{round_number}i{index}"
            start = time.perf_counter()
            facts(unique)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def first_parse_ms(name: str) -> float:
    code = (
        "import sys, time; sys.path.insert(0, 'bench'); import user_agents as u; "
        f"t = time.perf_counter(); u.{name}('curl/8.5.0'); print((time.perf_counter() - t) * 1e3)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(output.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = len(CASES) * 4
    regex_bots = sum(
        (BOT_USER_AGENT.search(case.user_agent) is not None) == (case.kind == "bot")
        for case in CASES
    )
    print(f"{len(CASES)} real User-Agent headers, {total} facts each library must get right")
    print(f"td_web's bot regex agrees with the expected bot/not-bot on {regex_bots}/{len(CASES)}")
    for label, name, facts in (
        ("ua-parser", "ua_parser_facts", ua_parser_facts),
        ("device-detector", "device_detector_facts", device_detector_facts),
    ):
        right, wrong = score(facts)
        print(
            f"{label:16} right {right}/{total}"
            f"  uncached parse {cost_us(facts, args.repeat):9.1f} µs"
            f"  first parse in a fresh process {first_parse_ms(name):8.1f} ms"
        )
        for line in wrong:
            print(f"    {line}")


if __name__ == "__main__":
    main()
