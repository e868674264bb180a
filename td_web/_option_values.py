"""What a value of each kind of option may be: one parser per kind, each given the value and
the setting's name (an option name, or the environment variable it came from) and raising a
:class:`ConfigurationError` naming both.

A leaf module: the option table (``_options``) refers to these, and the modules that build the
configuration from the table import it.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import math
import os
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: Checks and converts one given value: ``parse(value, setting)``.
Parser = Callable[[Any, str], Any]

DEFAULT_ENDPOINT = "https://nom.telemetrydeck.com"
#: The HTTP client libraries the transport can use (same API).
HTTP_CLIENTS = ("httpx2", "httpx")
#: A namespace as the client sends to it and the local collector accepts it (fullmatch).
NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_UUID_LIKE = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
#: The edge headers of the common hosts, for the README and error messages.
KNOWN_COUNTRY_HEADERS = ("CF-IPCountry", "CloudFront-Viewer-Country", "X-Vercel-IP-Country")
#: What ``before_send_errors`` may say.
ON_ERROR_CHOICES = ("send", "drop")


class ConfigurationError(ValueError):
    """td_web was configured with a value it cannot work with; the message names the setting."""


# -- the client's values ---------------------------------------------------------------------


def parse_bool(value: object, setting: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(
        f"{setting} must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}"
    )


def optional_bool(value: Any, setting: str) -> bool | None:
    return None if value is None else parse_bool(value, setting)


def text(value: Any, setting: str) -> str:
    """A string, surrounding whitespace dropped (an environment variable often ends in one)."""
    return _string(value, setting).strip()


def secret(value: Any, setting: str) -> str:
    """A string taken exactly as given: every character of a salt counts."""
    return _string(value, setting)


def _string(value: Any, setting: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{setting} must be a string, got {type(value).__name__}")
    return value


def endpoint(value: Any, setting: str) -> str:
    """Found here, once, rather than by a sender that would fail on every batch."""
    url = text(value, setting)
    problem = endpoint_problem(url)
    if problem:
        raise ConfigurationError(
            f"{setting} must be an http(s) base URL such as {DEFAULT_ENDPOINT!r}, "
            f"got {url!r} ({problem})"
        )
    return url


def endpoint_problem(endpoint: str) -> str | None:
    """Why an endpoint cannot be sent to, or None."""
    if not re.match(r"^https?://[^/\s]+", endpoint):
        return "not an http:// or https:// URL with a host"
    if re.search(r"[\s\x00-\x1f\x7f]", endpoint):
        return "it contains whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(endpoint)
        _ = parts.port  # parsing the port is the check: "abc" or 99999 raise
    except ValueError as exc:
        return str(exc)
    if not parts.hostname:
        return "no host"
    if parts.query or parts.fragment:
        return "a base URL has no query or fragment"
    return None


def namespace(value: Any, setting: str) -> str:
    """Reverse-DNS style; "" sends to the plain ``/v2/`` path like no namespace."""
    name = text(value, setting)
    if name and not NAMESPACE.fullmatch(name):
        raise ConfigurationError(
            f"{setting} must be reverse-DNS style such as 'com.example', got {name!r}"
        )
    return name


def app_id_problem(app_id: str) -> str | None:
    """Why an app id looks wrong, or None. TelemetryDeck app ids are UUIDs: one that is not
    may still be accepted by a self-hosted server, so this is a warning, not a refusal."""
    if not _UUID_LIKE.match(app_id.strip()):
        return (
            f"app id {app_id!r} does not look like a TelemetryDeck app id (a UUID such as "
            "'B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE'); signals may be rejected"
        )
    return None


def time_zone(value: Any, setting: str) -> str:
    name = text(value, setting)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"{setting} {name!r}: not an IANA time zone name such as 'UTC' or "
            f"'Europe/Berlin' ({exc})"
        ) from exc
    return name


def http_client(value: Any, setting: str) -> str:
    if value not in HTTP_CLIENTS:
        raise ConfigurationError(f"{setting} must be 'httpx2' or 'httpx', got {value!r}")
    if importlib.util.find_spec(value) is None:
        raise ConfigurationError(f"{setting} is {value!r}, but {value} is not installed")
    return str(value)


def count(value: Any, setting: str) -> int:
    """A whole number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{setting} must be a non-negative integer, got {value!r}")
    return value


def at_least(minimum: int) -> Parser:
    """A whole number, ``minimum`` or more."""

    def parse(value: Any, setting: str) -> int:
        number = count(value, setting)
        if number < minimum:
            raise ConfigurationError(f"{setting} must be at least {minimum}, got {number}")
        return number

    return parse


def between(minimum: int, maximum: int) -> Parser:
    """A whole number from ``minimum`` to ``maximum``."""
    lower = at_least(minimum)

    def parse(value: Any, setting: str) -> int:
        number = int(lower(value, setting))
        if number > maximum:
            raise ConfigurationError(f"{setting} must be at most {maximum}, got {number}")
        return number

    return parse


def positive_count(value: Any, setting: str) -> int:
    return int(at_least(1)(value, setting))


def duration(value: Any, setting: str) -> float:
    """Seconds, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"{setting} must be a non-negative number, got {value!r}")
    return float(value)


def sync_callable(value: object, setting: str) -> Any:
    """A plain callable: an ``async def`` would return a coroutine that is never awaited."""
    if not callable(value):
        raise ConfigurationError(f"{setting} must be a callable, got {value!r}")
    if inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(
        getattr(value, "__call__", None)  # noqa: B004 - an instance with an async __call__
    ):
        raise ConfigurationError(
            f"{setting} must be a plain function, not an async def ({value!r}): td_web calls it "
            "where no event loop awaits it"
        )
    return value


def before_send_errors(value: object, setting: str) -> str:
    if isinstance(value, str) and value.strip().lower() in ON_ERROR_CHOICES:
        return value.strip().lower()
    raise ConfigurationError(
        f"{setting} must be 'send' (the signal goes out unchanged) or 'drop', got {value!r}"
    )


def default_payload(value: Any, setting: str) -> Any:
    if isinstance(value, Mapping):
        return value
    if not callable(value):
        raise ConfigurationError(
            f"{setting} must be a mapping or a callable returning one, got {value!r}"
        )
    return sync_callable(value, setting)


# -- request telemetry's values --------------------------------------------------------------


def signal_type(value: Any, setting: str) -> str | None:
    """A signal type, or None to switch that automatic signal off."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigurationError(f"{setting} must be a signal type or None, got {value!r}")
    return value


def seconds(value: Any, setting: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{setting} must be a positive number of seconds, got {value!r}")
    return value


def samesite(value: Any, setting: str) -> str:
    canonical = _SAMESITE.get(str(value).lower())
    if canonical is None:
        raise ConfigurationError(f"{setting} must be Lax, Strict or None, got {value!r}")
    return canonical


def cookie_name(value: Any, setting: str) -> str:
    if not isinstance(value, str) or not _COOKIE_NAME.fullmatch(value):
        raise ConfigurationError(f"{setting} must be a valid cookie name, got {value!r}")
    return value


def cookie_path(value: Any, setting: str) -> str:
    # Written into Set-Cookie as it is: a ";" would add attributes of its own.
    if not isinstance(value, str) or not re.fullmatch(r"/[\x21-\x3a\x3c-\x7e]*", value):
        raise ConfigurationError(f"{setting} must be a URL path such as '/', got {value!r}")
    return value


def cookie_domain(value: Any, setting: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*)", value):
        raise ConfigurationError(f"{setting} must be a domain such as 'example.com', got {value!r}")
    return value


def paths(value: Any, setting: str) -> tuple[str, ...]:
    found = _strings(setting, value)
    for path in found:
        if not path.startswith("/"):
            raise ConfigurationError(f"{setting} entries must start with '/', got {path!r}")
    return tuple(found)


def patterns(value: Any, setting: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in _items(setting, value):
        if isinstance(pattern, re.Pattern):
            compiled.append(pattern)
            continue
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ConfigurationError(
                f"{setting}: {pattern!r} is not a valid regex ({exc})"
            ) from exc
    return tuple(compiled)


def methods(value: Any, setting: str) -> frozenset[str]:
    return frozenset(method.upper() for method in _strings(setting, value))


def sample_rate(value: object, setting: str) -> float:
    """A sampling rate: a finite number from 0.0 to 1.0 (a numeric string from settings)."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ConfigurationError(f"{setting} must be a number from 0.0 to 1.0, got {value!r}")
    return number


def statuses(value: object, setting: str) -> frozenset[int]:
    """Status codes (404, "404") and classes ("4xx") as the set of codes they cover."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [value]
    codes: set[int] = set()
    for item in _items(setting, value):
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            codes.add(item)
            continue
        if isinstance(item, str):
            text = item.strip()
            status_class = _STATUS_CLASS.match(text)
            if status_class:
                base = int(status_class.group(1)) * 100
                codes.update(range(base, base + 100))
                continue
            if text.isdigit() and 100 <= int(text) <= 599:
                codes.add(int(text))
                continue
        raise ConfigurationError(
            f"{setting} entries must be status codes (404) or classes ('4xx'), got {item!r}"
        )
    return frozenset(codes)


def route_templates(value: object, setting: str) -> list[str]:
    """One route template or a list of them, as given (``_web.response_filter.route_key``
    normalises them)."""
    if isinstance(value, str):
        value = [value]
    found = _items(setting, value)
    for item in found:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{setting} entries must be route templates, got {item!r}")
    return [item for item in found if isinstance(item, str)]


def country_headers(value: Any, setting: str) -> tuple[str, ...]:
    """Header names, in the order they are trusted (a comma-separated string from settings)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"{setting} must be a list of header names such as {list(KNOWN_COUNTRY_HEADERS)}"
            f", got {value!r}"
        )
    names = []
    for name in value:
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ConfigurationError(
                f"{setting}: {name!r} is not an HTTP header name (e.g. 'CF-IPCountry')"
            )
        names.append(name)
    return tuple(names)


def geoip_database(value: Any, setting: str) -> str:
    """A readable MaxMind-format file."""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(
            f"{setting} must be the path of a .mmdb file, got {type(value).__name__}"
        )
    path = os.fspath(value)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ConfigurationError(f"{setting} {path!r} is not a readable file")
    return str(path)


def plain_callable(value: Any, setting: str) -> Any:
    return require_sync_callable(setting, value)


def require_sync_callable(name: str, value: Any) -> Any:
    """A user-supplied callable td_web calls on the request's path: it must be a plain one.
    An ``async def`` function would return a coroutine that nobody awaits (a random user per
    request, an exclusion that always holds), so it is refused at start-up."""
    if not callable(value):
        raise ConfigurationError(f"{name} must be a callable, got {type(value).__name__}")
    target = value
    while isinstance(target, functools.partial):
        target = target.func
    if (
        inspect.iscoroutinefunction(target)
        or inspect.isasyncgenfunction(target)
        or inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004
    ):
        raise ConfigurationError(
            f"{name} must be a plain function, not async ({_callable_name(value)} is "
            "`async def`): td_web calls it on the request's path and cannot await it. "
            "Return the value directly (for a user, read it from the request)."
        )
    return value


def _callable_name(value: Any) -> str:
    return str(getattr(value, "__qualname__", None) or type(value).__qualname__)


def _items(name: str, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{name} must be a list, got {value!r}")
    return list(value)


def _strings(name: str, value: Any) -> list[str]:
    found = _items(name, value)
    for item in found:
        if not isinstance(item, str):
            raise ConfigurationError(f"{name} entries must be strings, got {item!r}")
    return found
