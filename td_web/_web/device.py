"""User-Agent -> the device keys TelemetryDeck's dashboard reads, parsed on the sender thread.

The header itself never leaves the process: only the browser, system and device families the
``ua-parser`` library (uap-core's rules, with its compiled ``ua-parser-rs`` matcher when
installed) finds in it. Without the library the keys are simply absent.

Bounds: only the first :data:`MAX_PARSED_LENGTH` characters are parsed (the Rust matcher runs
in linear time, so a hostile header costs at most that much); results are cached per distinct
header up to :data:`_CACHE_LIMIT` entries, and longer headers are never cached.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._log import logger

#: Real user agents stay under 500 characters; every rule matches within this many.
MAX_PARSED_LENGTH = 1024
_CACHE_MAX_LENGTH = 512
_CACHE_LIMIT = 4096
_MAX_VALUE_LENGTH = 64

#: uap-core's family names -> the names TelemetryDeck's Apple and web SDKs use for a platform.
_SYSTEM_NAMES = {
    "Mac OS X": "macOS",
    "Chrome OS": "ChromeOS",
    "Windows": "Windows",
    "iOS": "iOS",
    "Android": "Android",
}
_DESKTOP_SYSTEMS = frozenset(
    {"macOS", "Windows", "Linux", "Ubuntu", "Fedora", "Debian", "ChromeOS", "FreeBSD", "OpenBSD"}
)
_MOBILE_SYSTEMS = frozenset(
    {"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS", "Firefox OS", "HarmonyOS"}
)
#: uap-core's device family for crawlers and other automated clients.
_BOT_DEVICE = "Spider"

Keys = Mapping[str, str]
_NO_KEYS: Keys = {}


class DeviceParser:
    """Turns a User-Agent into device keys; one per client, used from the sender thread."""

    def __init__(self) -> None:
        self._cache: dict[str, Keys] = {}

    @staticmethod
    def warm_up(background: bool = True) -> None:
        """Load the rules now (compiling them takes a few hundred milliseconds) rather than
        delaying the first signals: in a thread of their own when a sender thread builds the
        signals, else here (sync mode, a serverless function's cold start: no thread may
        outlive an invocation there)."""
        if _loaded:
            return
        if background:
            # Not a daemon: the interpreter waits for it at exit. A daemon thread still in the
            # rules' compiled code when the interpreter finalizes is unwound by force, and that
            # aborts the whole process (SIGABRT, "exception not rethrown") instead of letting
            # it exit with its own status: a short command or a failed startup would crash.
            threading.Thread(target=_shared_parser, name="td_web-ua-rules").start()
        else:
            _shared_parser()

    def keys(self, user_agent: str | None) -> Keys:
        """The device keys of a User-Agent (empty when unknown); never raises."""
        if not user_agent:
            return _NO_KEYS
        if len(user_agent) > _CACHE_MAX_LENGTH:
            return self._keys_uncached(user_agent)
        cached = self._cache.get(user_agent)
        if cached is None:
            cached = self._keys_uncached(user_agent)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[user_agent] = cached
        return cached

    def is_bot(self, user_agent: str | None) -> bool:
        return self.keys(user_agent).get("isBot") == "true"

    def _keys_uncached(self, user_agent: str) -> Keys:
        parse = _shared_parser()
        if parse is None:
            return _NO_KEYS
        text = user_agent[:MAX_PARSED_LENGTH]
        try:
            return device_keys(parse(text), text)
        except Exception:
            logger.exception("td_web: parsing a User-Agent failed; sent without device keys")
            return _NO_KEYS


#: The process's one parser: its rules are compiled once, whatever the number of clients.
_parse: Callable[[str], Any] | None = None
_loaded = False  # True once loading was tried (``_parse`` stays None without ua-parser)
_load_lock = threading.Lock()


_lock_pid = os.getpid()


def _new_lock_after_fork() -> None:
    global _load_lock, _lock_pid
    _load_lock = threading.Lock()
    _lock_pid = os.getpid()


def _lock_of_this_process() -> threading.Lock:
    """The load lock, or a new one in a process forked without Python's fork hooks (uWSGI's
    workers, by default): there the parent's warm-up thread may have held it at the fork, and
    that thread does not exist here to release it. Only asked while the rules are not loaded."""
    if _lock_pid != os.getpid():
        _new_lock_after_fork()
    return _load_lock


# A fork (gunicorn's preload, multiprocessing) waits until a warm-up thread has finished
# loading: forked in the middle of its imports, the child would find their locks held forever.
# The child then inherits the compiled rules.
os.register_at_fork(
    before=lambda: _load_lock.acquire(),
    after_in_parent=lambda: _load_lock.release(),
    after_in_child=_new_lock_after_fork,
)


def _shared_parser() -> Callable[[str], Any] | None:
    global _loaded, _parse
    if not _loaded:
        with _lock_of_this_process():
            if not _loaded:
                _parse = _load_parser()
                _loaded = True
    return _parse


def _load_parser() -> Callable[[str], Any] | None:
    try:
        from ua_parser import BestAvailableResolver, Parser
        from ua_parser.loaders import load_lazy_builtins
    except ImportError:
        logger.info(
            "td_web: ua-parser is not installed; signals carry no browser, system or device "
            "keys (pip install 'td_web[device]')"
        )
        return None
    # No caching resolver: its cache would keep whole headers; ours keeps only short ones.
    parser = Parser(BestAvailableResolver(load_lazy_builtins()))
    return parser.parse


def device_keys(result: Any, user_agent: str) -> Keys:
    """The keys for one ``ua_parser.Result`` (``user_agent`` is the text it was parsed from)."""
    keys: dict[str, str] = {}
    browser, system, device = result.user_agent, result.os, result.device
    if browser is not None and browser.family != "Other":
        keys["browserName"] = browser.family
        version = _version(browser.major, browser.minor, browser.patch)
        if version:
            keys["browserVersion"] = version
    system_name = None
    if system is not None and system.family != "Other":
        system_name = _SYSTEM_NAMES.get(system.family, system.family)
        if system_name == "iOS" and device is not None and device.family == "iPad":
            system_name = "iPadOS"
        keys["TelemetryDeck.Device.operatingSystem"] = system_name
        keys["TelemetryDeck.Device.platform"] = system_name
        full = _version(system.major, system.minor, system.patch)
        if full:
            major_minor = _version(system.major, system.minor, None)
            keys["systemVersion"] = full
            keys["majorSystemVersion"] = system.major
            keys["majorMinorSystemVersion"] = major_minor
            keys["TelemetryDeck.Device.systemVersion"] = f"{system_name} {full}"
            keys["TelemetryDeck.Device.systemMajorVersion"] = f"{system_name} {system.major}"
            keys["TelemetryDeck.Device.systemMajorMinorVersion"] = f"{system_name} {major_minor}"
    bot = device is not None and device.family == _BOT_DEVICE
    # uap-core's catch-all device rules copy whatever text stands in the model's place
    # ("Generic_Android"): that is the client's own text, not a known device, so it is not sent.
    known_device = (
        device is not None
        and not bot
        and device.family != "Other"
        and bool(device.brand)
        and not device.brand.startswith("Generic")
    )
    if known_device:
        keys["device"] = device.family
        if device.model:
            keys["modelName"] = keys["TelemetryDeck.Device.modelName"] = device.model
        keys["TelemetryDeck.Device.brand"] = device.brand
    tablet = mobile = desktop = False
    if not bot:
        tablet = _is_tablet(system_name, device.family if device is not None else "", user_agent)
        mobile = not tablet and system_name in _MOBILE_SYSTEMS
        desktop = not tablet and not mobile and system_name in _DESKTOP_SYSTEMS
    keys["isBot"] = _flag(bot)
    keys["isMobile"] = _flag(mobile)
    keys["isTablet"] = _flag(tablet)
    keys["isDesktop"] = _flag(desktop)
    keys["isTouchCapable"] = _flag(mobile or tablet)
    # Every real family and model name is short; a long one is text the client made up.
    # (And plain printable ASCII, so that the keys need no second pass through the sanitizer.)
    return {
        key: value
        for key, value in keys.items()
        if len(value) <= _MAX_VALUE_LENGTH and value.isascii() and value.isprintable()
    }


def _is_tablet(system: str | None, device_family: str, user_agent: str) -> bool:
    # uap-core names devices, not their form factor. Android tablets leave "Mobile" out of
    # their header (Google's documented convention); Firefox on tablets says "Tablet".
    if system == "iPadOS" or "Kindle" in device_family:
        return True
    if system == "Android":
        return "Mobile" not in user_agent
    return "Tablet" in user_agent and system in _MOBILE_SYSTEMS


def _version(major: str | None, minor: str | None, patch: str | None) -> str:
    if not major:
        return ""
    if not minor:
        return major
    return f"{major}.{minor}.{patch}" if patch else f"{major}.{minor}"


def _flag(value: bool) -> str:
    return "true" if value else "false"
