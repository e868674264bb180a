"""The automatic signal's payload, built on the sender thread from a request's raw strings.

Nothing here runs while the request is served: the adapter only copies a few header strings,
and this module parses them later (referer, query string, Accept-Language).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from math import isfinite
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._sanitize import FLOAT_VALUE_KEY, MAX_VALUE_LENGTH
from .sources import CLICK_ID_PARAMETERS

#: Query parameters TelemetryDeck's web dashboard reads; every other parameter is dropped.
CAMPAIGN_PARAMETERS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "ref",
    "source",
    "src",
)
_CAMPAIGN_SET = frozenset(CAMPAIGN_PARAMETERS)
#: Per-click ad identifiers, kept in a queued request only with ``send_click_ids``.
_CLICK_ID_NAMES = frozenset(CLICK_ID_PARAMETERS)
#: A cheap first look: a query without any of these has no campaign parameter.
_CAMPAIGN_HINT = re.compile("|".join(re.escape(name + "=") for name in CAMPAIGN_PARAMETERS))
_LANGUAGE_TAG = re.compile(r"^([A-Za-z]{2,8})(?:[-_]([A-Za-z0-9]{1,8}))*$")
_REGION = re.compile(r"^(?:[A-Za-z]{2}|\d{3})$")
_MAX_QUERY_LENGTH = 8192


_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_with_port(hostname: str, port: int | str | None, scheme: str = "") -> str:
    """``host[:port]`` as a URL spells it: an IPv6 address in brackets (``[::1]:8000``, not
    the invalid ``::1:8000``), no port when it is the scheme's default."""
    if ":" in hostname and not hostname.startswith("["):
        hostname = f"[{hostname}]"
    if port is None or port == "" or str(port) == str(_DEFAULT_PORTS.get(scheme)):
        return hostname
    return f"{hostname}:{port}"


def referer_parts(referer: str) -> tuple[str, str, str] | None:
    """(scheme, host, path) of a Referer header, or None when it is not an absolute URL."""
    try:
        parts = urlsplit(referer.strip())
        # ``port`` parses lazily: a port out of range or not a number raises only here.
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = host_with_port(parts.hostname or "", port, parts.scheme)
    return parts.scheme, host, parts.path or "/"


def campaign_parameters(query_string: str) -> dict[str, str]:
    """Only the campaign parameters of a query string; the first value of each wins."""
    found: dict[str, str] = {}
    if not query_string:
        return found
    for key, value in parse_qsl(query_string[:_MAX_QUERY_LENGTH], keep_blank_values=False):
        if key in _CAMPAIGN_SET and key not in found:
            found[key] = value
    return found


def campaign_query(query_string: str, click_ids: bool = False) -> str:
    """The query string reduced to its campaign parameters ("" without any): what a queued
    request keeps instead of the whole query, which may hold tokens and e-mail addresses.
    ``click_ids``: keep ``gclid`` and ``msclkid`` too (``send_click_ids``)."""
    if not query_string:
        return ""
    wanted_clicks = click_ids and ("clid" in query_string or "CLID" in query_string)
    if not wanted_clicks and _CAMPAIGN_HINT.search(query_string) is None:
        return ""
    # The raw pairs, as sent (the sender decodes them): no decoding and encoding here, on the
    # request's path. A percent-encoded name is not a campaign parameter, as in parse_qsl.
    kept = []
    for pair in query_string[:_MAX_QUERY_LENGTH].split("&"):
        name = pair.partition("=")[0]
        if name in _CAMPAIGN_SET or (wanted_clicks and name.lower() in _CLICK_ID_NAMES):
            kept.append(pair)
    return "&".join(kept)


def locale_keys(accept_language: str | None) -> dict[str, str]:
    """Locale, language and region from the first usable ``Accept-Language`` tag."""
    if not accept_language:
        return {}
    for item in accept_language.split(",")[:8]:
        tag = item.split(";", 1)[0].strip()
        if not tag or tag == "*" or not _LANGUAGE_TAG.match(tag):
            continue
        subtags = tag.replace("_", "-").split("-")
        language = subtags[0].lower()
        region = next((s.upper() for s in subtags[1:] if _REGION.match(s)), None)
        keys = {
            "TelemetryDeck.RunContext.locale": f"{language}-{region}" if region else language,
            "TelemetryDeck.UserPreference.language": language,
        }
        if region:
            keys["TelemetryDeck.UserPreference.region"] = region
        return keys
    return {}


# A site sees the same few referers and Accept-Language headers again and again; parsing each
# once saves the sender thread a URL split and a few regex matches per request. The cached
# results are only ever copied into payloads, never changed. Long (possibly hostile) headers
# are parsed every time instead, so that the caches stay under a megabyte whatever arrives.
_CACHED_LENGTH = 512
_referer_cache = lru_cache(maxsize=512)(referer_parts)
_locale_cache = lru_cache(maxsize=256)(locale_keys)
# The queued query string holds only the campaign parameters: the few links a site's
# newsletters and ads use, again and again.
_campaign_cache = lru_cache(maxsize=512)(campaign_parameters)


def _cached_referer_parts(referer: str) -> tuple[str, str, str] | None:
    if len(referer) > _CACHED_LENGTH:
        return referer_parts(referer)
    return _referer_cache(referer)


def _cached_locale_keys(accept_language: str) -> dict[str, str]:
    if len(accept_language) > _CACHED_LENGTH:
        return locale_keys(accept_language)
    return _locale_cache(accept_language)


def _cached_campaign_parameters(query_string: str) -> dict[str, str]:
    if len(query_string) > _CACHED_LENGTH:
        return campaign_parameters(query_string)
    return _campaign_cache(query_string)


def request_payload(
    *,
    method: str,
    status: int,
    route: str | None,
    scheme: str,
    host: str,
    path: str,
    query_string: str,
    referer: str | None,
    accept_language: str | None,
    duration: float,
    page_view: bool,
    clean_referer_path: Callable[[str], str] = str,
) -> dict[str, Any]:
    """``path`` and ``route`` come cleaned (``redaction``); ``clean_referer_path`` cleans the
    Referer's path the same way."""
    payload: dict[str, Any] = {
        "HTTP.method": method,
        "HTTP.statusCode": str(status),
        "path": path,
        "host": host,
        "scheme": scheme,
        "url": f"{scheme}://{host}{path}",  # the URL without its query
        "TelemetryDeck.Signal.durationInSeconds": f"{duration:.3f}",
        "floatValue": round(duration, 6),
    }
    if route is not None:
        payload["HTTP.route"] = route
    source = ""  # the page the visitor came from, when it is on this site
    referer_split = _cached_referer_parts(referer) if referer else None
    if referer_split is not None:
        referer_scheme, referer_host, referer_path = referer_split
        referer_path = clean_referer_path(referer_path)
        payload["referer"] = f"{referer_scheme}://{referer_host}{referer_path}"
        if page_view and referer_host.lower() == host.lower():
            source = referer_path
    if query_string:
        payload.update(_cached_campaign_parameters(query_string))
    if accept_language:
        payload.update(_cached_locale_keys(accept_language))
    if page_view:
        payload["TelemetryDeck.Navigation.schemaVersion"] = "1"
        payload["TelemetryDeck.Navigation.sourcePath"] = source
        payload["TelemetryDeck.Navigation.destinationPath"] = path
        payload["TelemetryDeck.Navigation.identifier"] = f"{source} -> {path}"
    return payload


def plain_payload(payload: dict[str, Any]) -> bool:
    """Whether a payload td_web built is what the sanitizer would return unchanged: every
    value ASCII text within the length limit, ``floatValue`` a finite float. (Its keys are
    td_web's own names: short, ASCII, none reserved.) Then it skips the sanitizer
    (SignalBuilder.build's ``clean_own_payload``), which costs the sender thread four times
    this check for a page view's twenty keys."""
    values = list(payload.values())
    number = payload.get(FLOAT_VALUE_KEY)
    if number is not None:
        if type(number) is not float or not isfinite(number):
            return False
        values.remove(number)
    try:
        # One join and one scan in C instead of a test per value (measured 2.5x faster).
        joined = "".join(values)
    except TypeError:  # a value that is not text
        return False
    return joined.isascii() and (
        len(joined) <= MAX_VALUE_LENGTH or max(map(len, values)) <= MAX_VALUE_LENGTH
    )


def plain_json(payload: dict[str, Any], members: bytes) -> bool:
    """:func:`plain_payload` for a payload of td_web's (text values and ``floatValue``) from
    its JSON members (``_encoding.encode_members``), which the signal then carries: ASCII JSON
    means ASCII text, and JSON of at most the length limit holds no longer value. A scan of
    the bytes in C instead of a join of the values."""
    number = payload.get(FLOAT_VALUE_KEY)
    if number is not None and (type(number) is not float or not isfinite(number)):
        return False
    return members.isascii() and (len(members) <= MAX_VALUE_LENGTH or plain_payload(payload))
