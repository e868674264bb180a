"""Which requests get no automatic signal: static files, health checks, bots, and the user's own
rules. Runs on the request path, so each check is a tuple prefix test or a cached lookup."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from .._log import throttled
from .settings import DEFAULT_EXCLUDED_PREFIXES, DEFAULT_HEALTH_PATHS, WebSettings

# Crawlers, link-preview fetchers, uptime monitors and headless browsers. Developer tools such
# as curl or python-httpx are deliberately not here: a developer trying their site is traffic.
BOT_USER_AGENT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|mediapartners|facebookexternalhit|facebot|embedly|"
    r"quora link preview|outbrain|pinterest|vkshare|w3c_validator|whatsapp|telegrambot|"
    r"headlesschrome|lighthouse|pagespeed|pingdom|uptimerobot|statuscake|site24x7|"
    r"newrelicpinger|synthetic|monitor|preview|archiver|ia_archiver|scrapy|"
    r"petalbot|bytespider|baiduspider|sogou|exabot|semrush|ahrefs|mj12bot|dotbot|"
    r"applebot|duckduckbot|bingpreview|google-inspectiontool|gptbot|chatgpt|claudebot|"
    r"perplexity|ccbot|amazonbot",
    re.IGNORECASE,
)
_BOT_CACHE_LIMIT = 4096
#: Real user agents are far shorter; bot markers sit well within this many characters.
_BOT_SCAN_LENGTH = 1024
#: Longer user agents are checked but not cached: real ones are far shorter, and a client
#: sending kilobytes of unique ones must not fill the cache with them.
_BOT_CACHE_MAX_LENGTH = 512


class Exclusions:
    def __init__(self, settings: WebSettings, extra_prefixes: Iterable[str] = ()) -> None:
        prefixes = [*DEFAULT_EXCLUDED_PREFIXES, *extra_prefixes, *settings.exclude_paths]
        self._prefixes = tuple(p for p in prefixes if p and p != "/")
        self._includes = settings.include_paths
        self._health = DEFAULT_HEALTH_PATHS - set(self._includes)
        self._patterns = settings.exclude_patterns
        self._callable = settings.exclude
        self._methods = settings.exclude_methods
        self._track_bots = settings.track_bots
        self._bot_cache: dict[str, bool] = {}

    def add_prefix(self, prefix: str) -> None:
        if prefix and prefix != "/" and prefix not in self._prefixes:
            self._prefixes = (*self._prefixes, prefix)

    def excludes(self, method: str, path: str, user_agent: str | None, native: Any) -> bool:
        if method in self._methods:
            return True
        if path.startswith(self._prefixes) and not (
            self._includes and path.startswith(self._includes)
        ):
            return True
        if path in self._health or (path.endswith("/") and path[:-1] in self._health):
            return True
        if self._patterns and any(p.search(path) for p in self._patterns):
            return True
        if user_agent and not self._track_bots:
            # The cache read here: is_bot's call costs as much as the lookup.
            bot = self._bot_cache.get(user_agent)
            if bot is None:
                bot = self.is_bot(user_agent)
            if bot:
                return True
        if self._callable is not None:
            try:
                verdict = self._callable(native)
                if inspect.isawaitable(verdict):
                    # A plain function returning a coroutine (async ones are refused at
                    # start-up): its truth would exclude every request.
                    getattr(verdict, "close", lambda: None)()
                    throttled.warning(
                        "awaitable-exclude",
                        "td_web: the exclude callable returned an awaitable, which td_web "
                        "cannot await; the request is tracked. Return True or False.",
                    )
                    return False
                return bool(verdict)
            except Exception:
                throttled.exception(
                    "exclude-raised", "td_web: the exclude callable raised; the request is tracked"
                )
        return False

    def is_bot(self, user_agent: str) -> bool:
        if len(user_agent) > _BOT_CACHE_MAX_LENGTH:
            # Not cached (hostile sizes would fill the cache), and only the start is scanned:
            # the regex on a huge header would cost milliseconds of the request.
            return bool(BOT_USER_AGENT.search(user_agent, 0, _BOT_SCAN_LENGTH))
        cached = self._bot_cache.get(user_agent)
        if cached is None:
            if len(self._bot_cache) >= _BOT_CACHE_LIMIT:
                self._bot_cache.clear()
            cached = self._bot_cache[user_agent] = bool(BOT_USER_AGENT.search(user_agent))
        return cached
