"""Realistic traffic for the example site: visitors with their own cookies and browsers."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._transport import http_library

#: Current browsers, visitor by visitor (the fourth visitor is the crawler): desktops, phones
#: and a tablet from the first few on, so that every dashboard panel has data.
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.6261.105 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
#: A crawler: excluded by td_web's default bot rule, so it sends nothing.
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
#: What Cloudflare would put in CF-IPCountry (the example site trusts that header).
COUNTRIES = ("US", "DE", "GB", "FR", "JP", "BR", "IN", "CA")
LANGUAGES = ("en-US,en;q=0.9", "de-DE,de;q=0.8,en;q=0.5", "fr-FR,fr;q=0.9", "ja-JP,ja;q=0.9")
CAMPAIGNS = ("", "?utm_source=newsletter&utm_campaign=autumn", "?ref=producthunt")
PRODUCTS = (("teapot", 1), ("mug", 2), ("kettle", 3))
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Tally:
    """What the traffic did, to check against what arrived."""

    requests: int = 0
    tracked: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    custom: dict[str, int] = field(default_factory=dict)


class Visitor:
    def __init__(
        self, site: str, rng: random.Random, tally: Tally, number: int, bot: bool = False
    ) -> None:
        self.rng = rng
        self.tally = tally
        self.client = http_library().Client(
            base_url=site,
            headers={
                "User-Agent": BOT if bot else BROWSERS[number % len(BROWSERS)],
                "Accept-Language": rng.choice(LANGUAGES),
                "Accept": "text/html,application/json",
                "CF-IPCountry": rng.choice(COUNTRIES),
            },
            follow_redirects=False,
            timeout=30,
        )
        self.site = site
        self.previous = ""

    def get(self, path: str, tracked: bool = True) -> Any:
        headers = {"Referer": self.site + self.previous} if self.previous else {}
        response = self.client.get(path, headers=headers)
        self._count(response, tracked)
        self.previous = path.split("?")[0]
        return response

    def post(self, path: str, data: dict[str, str], form_page: str) -> Any:
        token = self._csrf(form_page)
        response = self.client.post(
            path,
            data={**data, "csrfmiddlewaretoken": token},
            headers={"Referer": self.site + form_page},
        )
        self._count(response, True)
        return response

    def _csrf(self, page: str) -> str:
        match = _CSRF.search(self.get(page).text)
        return match.group(1) if match else ""

    def _count(self, response: Any, tracked: bool) -> None:
        self.tally.requests += 1
        self.tally.tracked += tracked
        self.tally.statuses[response.status_code] = (
            self.tally.statuses.get(response.status_code, 0) + 1
        )

    def custom(self, signal_type: str) -> None:
        self.tally.custom[signal_type] = self.tally.custom.get(signal_type, 0) + 1

    # -- what visitors do ------------------------------------------------------------------

    def browse(self) -> None:
        self.get("/" + self.rng.choice(CAMPAIGNS))
        self.get("/catalog/")
        slug, product_id = self.rng.choice(PRODUCTS)
        self.get(f"/catalog/products/{slug}/")
        self.get(f"/catalog/api/products/{product_id}/")

    def buy(self) -> None:
        picked = self.rng.sample(PRODUCTS, self.rng.randint(1, 3))
        self.post("/checkout/", {slug: "on" for slug, _ in picked}, "/")
        self.custom("Checkout.completed")

    def write(self) -> None:
        topic = self.rng.choice(("order", "product", "other"))
        response = self.post(
            "/contact/",
            {"email": "visitor@example.com", "topic": topic, "message": "Hello there"},
            "/contact/",
        )
        if response.status_code == 302:
            self.get("/contact/thanks/")
            self.custom("Contact.submitted")

    def log_in(self) -> None:
        self.post(
            "/accounts/login/",
            {"username": "demo", "password": "demo-password"},
            "/accounts/login/",
        )
        self.get("/account/")

    def misc(self) -> None:
        self.get("/export.csv")
        self.get("/api/status/")
        self.get("/healthz", tracked=False)
        self.get("/no-such-page/")

    def come_back(self) -> None:
        """A later visit: the session cookie expired, the visitor cookie remains."""
        self.client.cookies.delete("td_session")
        self.previous = ""
        self.browse()

    def crawl(self) -> None:
        self.get("/", tracked=False)
        self.get("/catalog/", tracked=False)

    def break_something(self) -> None:
        self.get("/boom/")
        self.tally.errors += 1

    def close(self) -> None:
        self.client.close()


def plan(visitors: int, rng: random.Random) -> list[list[str]]:
    """Each visitor's actions, so the progress bar knows the total up front."""
    plans = []
    for number in range(visitors):
        actions = ["browse"]
        actions += rng.sample(["browse", "buy", "write", "misc"], rng.randint(1, 3))
        if number == 0:
            actions += ["log_in", "buy"]
        if number == 1:
            actions += ["break_something"]
        if number == 2:
            actions += ["come_back"]
        if number == 3:
            actions = ["crawl"]
        plans.append(actions)
    return plans


def drive(site: str, visitors: int, seed: int, tick: Callable[[str], None]) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    for number, actions in enumerate(plan(visitors, rng)):
        visitor = Visitor(site, rng, tally, number, bot=actions == ["crawl"])
        try:
            for action in actions:
                getattr(visitor, action)()
                tick(action)
        finally:
            visitor.close()
    return tally


def count_actions(visitors: int, seed: int) -> int:
    return sum(len(actions) for actions in plan(visitors, random.Random(seed)))
