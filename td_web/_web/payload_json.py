"""A request's own payload (page view or request) written as JSON members from parts kept per
distinct request value, on the sender thread.

Building the payload as a dict and encoding it was the largest part of the sender's work per
signal (BENCHMARKS.md, "Sender CPU per signal"), yet almost all of it repeats: a site has few
routes and pages, a few referers, campaign links and Accept-Language headers. Each of these is
cleaned, parsed and encoded once, and a request joins the parts with what is its own (the
duration): the same members, in the same order, as ``payload.request_payload`` gives
(tests/test_core/test_core_signal_json.py compares them).

Bounded memory: each cache holds at most :data:`_LIMIT` (1,024) entries and forgets them all
when full; a request value longer than :data:`_CACHED_LENGTH` (512) characters is never kept
(the general path builds that payload instead), nor a cleaned path over twice that. An entry
holds a few copies of its values (the key, the cleaned text, its JSON): at most about 4 kB for
a request line, 3 kB for a referer, 2 kB for a query, 1 kB for an Accept-Language header, and
7 kB for a request shape (its key's strings, its joined parts), so under 17 MB in the worst
case of every entry of every cache at the limit, and a few hundred kB for a real site. The
caches hold only the request's values the queued record already holds (path, route, host,
referer, campaign query, Accept-Language) and what the signal sends anyway (their cleaned,
encoded forms), nothing else, and only on the sender thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from math import isfinite
from typing import TYPE_CHECKING, NamedTuple

from .._encoding import encode_built_bytes, encode_members
from .._sanitize import MAX_VALUE_LENGTH
from .._signal_json import OwnJSON
from .payload import campaign_parameters, locale_keys, referer_parts
from .redaction import PathRedactor
from .sources import source_keys

if TYPE_CHECKING:
    from . import RequestView

#: Entries per cache; full, a cache starts over (a miss costs one parse and encoding).
_LIMIT = 1024
#: Longer request values are not kept: the general path builds their payload each time.
_CACHED_LENGTH = 512
#: Cleaned paths a custom pattern's ``{redacted}`` made much longer than the request's are not
#: kept either (each entry stays a few kB).
_KEPT_CLEAN_LENGTH = 2 * _CACHED_LENGTH
#: A path the navigation identifier (``source -> destination``) repeats with another: longer
#: ones (a custom pattern's ``{redacted}`` can lengthen a path) take the general path, which
#: checks the identifier against the value limit.
_NAVIGATION_PATH_LENGTH = (MAX_VALUE_LENGTH - 4) // 2
#: A request shape's own payload (its parts joined) is kept up to this many bytes.
_KEPT_OWN_LENGTH = 4 * _KEPT_CLEAN_LENGTH

_NAVIGATION_KEYS = (
    "TelemetryDeck.Navigation.schemaVersion",
    "TelemetryDeck.Navigation.sourcePath",
    "TelemetryDeck.Navigation.destinationPath",
    "TelemetryDeck.Navigation.identifier",
)
_SCHEMA = b',"TelemetryDeck.Navigation.schemaVersion":"1","TelemetryDeck.Navigation.sourcePath":'
_DESTINATION = b',"TelemetryDeck.Navigation.destinationPath":'
_IDENTIFIER = b',"TelemetryDeck.Navigation.identifier":'
#: Between the duration's two spellings in a request's own payload (``OwnParts``).
DURATION_TO_FLOAT = b'","floatValue":'


class Page(NamedTuple):
    """What is kept per request line (method, status, scheme, host, route, path)."""

    #: The route and path as sent (cleaned): the error signal carries them too.
    route: str | None
    path: str
    #: ``"HTTP.method":...`` up to the opening quote of the duration's value.
    head: bytes
    #: ``,"HTTP.route":...`` or ``b""``.
    route_json: bytes
    #: The navigation keys around the referer's part of them: ``,"...destinationPath":"/p",
    #: "...identifier":`` and `` -> /p"``.
    navigation_destination: bytes
    navigation_end: bytes
    #: The host lowercase (a referer on it is the navigation's source).
    host: str
    keys: tuple[str, ...]
    key_count: int
    plain: bool


class _Part(NamedTuple):
    """Members kept per referer, query or Accept-Language header, each with a leading comma."""

    members: bytes
    #: Its keys, a query's traffic-source keys (``tail``) among them.
    keys: tuple[str, ...]
    key_count: int
    plain: bool
    #: A query's traffic-source keys (``combinedSource``, click ids), which go last.
    tail: bytes = b""
    #: A referer's part of the navigation keys: ``,"...schemaVersion":"1","...sourcePath":``
    #: and the source path (its cleaned path when on the request's own host, else empty) as
    #: JSON; then that JSON string again without its closing quote (the identifier goes on).
    navigation_source: bytes = _SCHEMA + b'""'
    source_open: bytes = b'"'


class OwnParts(NamedTuple):
    """A request's own payload as JSON members around its duration: ``head``, the duration
    (``"%.3f"``), :data:`DURATION_TO_FLOAT`, the floatValue (``"%.6f"``), then ``tail``."""

    head: bytes
    tail: bytes
    key_count: int
    keys: tuple[Collection[str], ...]


_NO_PART = _Part(b"", (), 0, True)
_new_tuple = tuple.__new__


class PayloadJSON:
    """Writes the own payload of one application's requests (its path redaction, its route
    spelling, whether click ids are sent)."""

    def __init__(
        self,
        redactor: PathRedactor,
        normalize_route: Callable[[str], str],
        send_click_ids: bool,
    ) -> None:
        self._redactor = redactor
        self._normalize_route = normalize_route
        self._click_ids = send_click_ids
        self._pages: dict[tuple[str, int, str, str, str | None, str], Page] = {}
        self._referers: dict[tuple[str, str], _Part] = {}
        self._queries: dict[str, _Part] = {}
        self._languages: dict[str, _Part] = {}
        #: The four parts joined, per request shape (``own_parts``).
        self._owns: dict[tuple[object, ...], OwnParts] = {}

    def page(
        self, method: str, status: int, scheme: str, host: str, route: str | None, path: str
    ) -> Page | None:
        """The request line's part; None for one too long to keep (the general path then)."""
        key = (method, status, scheme, host, route, path)
        page = self._pages.get(key)
        if page is None:
            if len(path) + len(host) + len(route or "") + len(method) > _CACHED_LENGTH:
                return None
            page = self._new_page(method, status, scheme, host, route, path)
            if len(page.path) + len(page.route or "") <= _KEPT_CLEAN_LENGTH:
                if len(self._pages) >= _LIMIT:
                    self._pages.clear()
                self._pages[key] = page
        return page

    def own(
        self,
        view: RequestView,
        route: str | None,
        status: int,
        duration: float,
        page_view: bool,
    ) -> OwnJSON | None:
        """The payload ``request_payload`` builds for this request (with the traffic-source
        keys the dashboard adds), as JSON; None when a value is not what the sanitizer leaves
        unchanged, or too long to keep (the general path then)."""
        parts = self.own_parts(view, route, status, page_view)
        if parts is None or type(duration) is not float or not isfinite(duration):
            return None
        float_json = b"%.6f" % duration
        members = b"".join(
            (parts.head, b"%.3f" % duration, DURATION_TO_FLOAT, float_json, parts.tail)
        )
        # tuple.__new__: a NamedTuple's own __new__ is a Python function (measured 2.6 % of
        # the instructions per page view).
        return _new_tuple(OwnJSON, (members, parts.key_count, parts.keys, float_json))

    def own_parts(
        self, view: RequestView, route: str | None, status: int, page_view: bool
    ) -> OwnParts | None:
        """The request's own payload around its duration, kept per request shape (request
        line, referer, query, Accept-Language): one lookup where the four parts' were four
        and their join (measured: 46,790 -> 39,830 instructions per page view, valgrind, 3,000
        views of the site mix); None as for :meth:`own`."""
        method, scheme, host, path = view.method, view.scheme, view.host, view.path
        referer, query_string, accept_language = (
            view.referer,
            view.query_string,
            view.accept_language,
        )
        key = (
            method,
            status,
            scheme,
            host,
            route,
            path,
            referer,
            query_string,
            accept_language,
            page_view,
        )
        parts = self._owns.get(key)
        if parts is not None:
            return parts
        page = self._pages.get(key[:6]) or self.page(method, status, scheme, host, route, path)
        if page is None:
            return None
        if referer:
            found = self._referers.get((referer, page.host))
            if found is None:
                found = self._new_referer(referer, page.host)
                if found is None:
                    return None
        else:
            found = _NO_PART
        query: _Part | None = _NO_PART
        if query_string:
            query = self._queries.get(query_string) or self._new_query(query_string)
        language: _Part | None = _NO_PART
        if accept_language:
            language = self._languages.get(accept_language) or self._new_language(accept_language)
        if query is None or language is None:
            return None
        if not (page.plain and found.plain and query.plain and language.plain):
            return None
        count = page.key_count + found.key_count + query.key_count + language.key_count
        keys: tuple[Collection[str], ...]
        if page_view:
            navigation = b"".join(
                (
                    found.navigation_source,
                    page.navigation_destination,
                    found.source_open,
                    page.navigation_end,
                )
            )
            count += 4
            keys = (page.keys, found.keys, query.keys, language.keys, _NAVIGATION_KEYS)
        else:
            navigation = b""
            keys = (page.keys, found.keys, query.keys, language.keys)
        tail = b"".join(
            (
                page.route_json,
                found.members,
                query.members,
                language.members,
                navigation,
                query.tail,
            )
        )
        parts = OwnParts(page.head, tail, count, keys)
        if len(page.head) + len(tail) <= _KEPT_OWN_LENGTH:
            if len(self._owns) >= _LIMIT:
                self._owns.clear()
            self._owns[key] = parts
        return parts

    def _new_page(
        self, method: str, status: int, scheme: str, host: str, route: str | None, path: str
    ) -> Page:
        redactor = self._redactor
        clean_route = redactor.path(self._normalize_route(route)) if route else None
        clean_path = redactor.path(path)
        request = {
            "HTTP.method": method,
            "HTTP.statusCode": str(status),
            "path": clean_path,
            "host": host,
            "scheme": scheme,
            "url": f"{scheme}://{host}{clean_path}",
        }
        values = list(request.values())
        keys = (*request, "TelemetryDeck.Signal.durationInSeconds", "floatValue")
        route_json = b""
        if clean_route is not None:
            route_json = b"," + encode_members({"HTTP.route": clean_route})
            values.append(clean_route)
            keys += ("HTTP.route",)
        head = encode_members(request) + b',"TelemetryDeck.Signal.durationInSeconds":"'
        path_json = _json_string(clean_path)
        return Page(
            clean_route,
            clean_path,
            head,
            route_json,
            _DESTINATION + path_json + _IDENTIFIER,
            b" -> " + path_json[1:],
            host.lower(),
            keys,
            len(keys),
            _plain(values) and len(clean_path) <= _NAVIGATION_PATH_LENGTH,
        )

    def _new_referer(self, referer: str, host: str) -> _Part | None:
        if len(referer) > _CACHED_LENGTH:
            return None
        split = referer_parts(referer)
        part = _NO_PART
        clean_length = 0
        if split is not None:
            referer_scheme, referer_host, referer_path = split
            referer_path = self._redactor.encoded_path(referer_path)
            clean_length = len(referer_path)
            value = f"{referer_scheme}://{referer_host}{referer_path}"
            source = b'""'
            if referer_host.lower() == host:  # (``host`` is Page.host: lowercase)
                source = _json_string(referer_path)
            part = _Part(
                b"," + encode_members({"referer": value}),
                ("referer",),
                1,
                _plain([value]) and len(referer_path) <= _NAVIGATION_PATH_LENGTH,
                navigation_source=_SCHEMA + source,
                source_open=source[:-1],
            )
        if clean_length <= _KEPT_CLEAN_LENGTH:
            if len(self._referers) >= _LIMIT:
                self._referers.clear()
            self._referers[(referer, host)] = part
        return part

    def _new_query(self, query_string: str) -> _Part | None:
        if len(query_string) > _CACHED_LENGTH:
            return None
        campaign = campaign_parameters(query_string)
        sources = source_keys(campaign, query_string, self._click_ids)
        part = _Part(
            _leading_comma(encode_members(campaign)),
            (*campaign, *sources),
            len(campaign) + len(sources),
            _plain([*campaign.values(), *sources.values()]),
            _leading_comma(encode_members(sources)),
        )
        if len(self._queries) >= _LIMIT:
            self._queries.clear()
        self._queries[query_string] = part
        return part

    def _new_language(self, accept_language: str) -> _Part | None:
        if len(accept_language) > _CACHED_LENGTH:
            return None
        keys = locale_keys(accept_language)
        part = _Part(
            _leading_comma(encode_members(keys)), tuple(keys), len(keys), _plain(keys.values())
        )
        if len(self._languages) >= _LIMIT:
            self._languages.clear()
        self._languages[accept_language] = part
        return part


def _json_string(text: str) -> bytes:
    return encode_built_bytes(text)  # type: ignore[arg-type]  # any JSON value, not only a dict


def _leading_comma(members: bytes) -> bytes:
    return b"," + members if members else b""


def _plain(values: Collection[str]) -> bool:
    """What ``payload.plain_payload`` checks of these values: ASCII text within the limit."""
    return all(value.isascii() and len(value) <= MAX_VALUE_LENGTH for value in values)
