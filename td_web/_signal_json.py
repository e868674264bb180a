"""td_web's own signals written straight as JSON, from parts encoded once.

A page view carries some fifty keys, and most of them are the same for every signal of a
client (app id, SDK and context keys), of a quarter hour (calendar keys), of a browser (device
keys) or of a session (clientUser, sessionID). Building every signal as a dict and encoding
all of it was most of the sender thread's work per signal (BENCHMARKS.md, "Sender CPU per
signal"). Here each of those parts is encoded once and kept, the parts one request's signals
share are joined once, and per signal only the request's own keys are encoded. What a
browser's usual requests share (``KeptSignals``: no visitor keys, properties, error or country)
is kept too, so that such a request is two lookups and a join (``RequestSignals``).

The JSON is the one ``SignalBuilder.build`` and ``_encoding`` give for the same record: the
same keys, in the same order, with the same values (tests/test_core/test_core_signal_json.py
builds requests of every kind both ways). Where the shortcut could not promise that, it
declines (None) and the record is built as dicts: a key two parts share (a default payload
naming a request key), more keys than a payload may hold, a value the sanitizer would change
or report.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from typing import Any, NamedTuple

from ._encoding import encode_built_bytes, encode_members
from ._sanitize import FLOAT_VALUE_KEY, MAX_KEYS, Reporter, sanitize_payload
from ._signal import BoundedMemo, SignalBuilder

#: Signal types remembered as JSON; more than this means types built from data, and the memo
#: starts over.
_TYPE_LIMIT = 4096
#: Browsers (User-Agents) whose parts are kept: a site's current browsers, in a few megabytes.
_BROWSER_LIMIT = 1024
#: Longer User-Agents are encoded each time, never kept (the device parser keeps none either).
KEPT_HEADER_LENGTH = 512
#: Browsers whose usual requests' parts are kept (``keep``), each a few kB (its User-Agent, its
#: shared members); more start over.
_KEPT_LIMIT = 1024


class Shared(NamedTuple):
    """The payload members every signal of one request has, joined: calendar and base keys,
    device, country and visitor keys, the request's properties."""

    members: bytes
    key_count: int
    #: Keys a signal's own payload must not have (their place in the dict would differ).
    taken: frozenset[str]


class OwnJSON(NamedTuple):
    """A signal's own payload as JSON members (no braces), for :meth:`SignalJSON.signal`:
    td_web's keys, values the sanitizer would leave as they are (``_web.payload.plain_json``)."""

    members: bytes
    #: How many keys ``members`` holds (``floatValue`` among them).
    key_count: int
    #: The keys, in groups: none may be a key another part of the signal has.
    keys: tuple[Collection[str], ...]
    #: ``floatValue``'s JSON, repeated at the signal's top level (``b""``: none).
    float_json: bytes = b""


def own_json(payload: Mapping[str, str | float]) -> OwnJSON:
    """A payload built as a dict (td_web's keys, plain values), as :class:`OwnJSON`."""
    number = payload.get(FLOAT_VALUE_KEY)
    return OwnJSON(
        encode_members(payload), len(payload), (payload,), b"" if number is None else _json(number)
    )


class _Declined(Exception):
    pass


class _Quiet(Reporter):
    """A sanitizer that would have something to say declines the shortcut instead: the
    general path then says it, once, as before."""

    __slots__ = ()

    def problem(self, kind: str, message: str) -> None:
        raise _Declined


class SignalJSON:
    """Writes td_web's own signals for one :class:`SignalBuilder`, on the sender thread."""

    def __init__(self, builder: SignalBuilder) -> None:
        self._builder = builder
        #: Every signal's first bytes, up to the clientUser's value (``ids`` goes on).
        self.head = b'{"appID":' + _json(builder.app_id) + b',"clientUser":"'
        self._test_mode = b"true" if builder.test_mode else b"false"
        self._types: dict[str, bytes] = {}
        self._prefix = _Prefix(None, b"", 0, frozenset())
        self._browsers: dict[str, _Browser] = {}
        self._anonymous_ids: BoundedMemo[str | None, bytes] = BoundedMemo(self._ids)
        self._kept: dict[Hashable, KeptSignals] = {}

    def ids(self, client_user: str | None, session_key: str | None) -> bytes:
        """``clientUser`` and ``sessionID`` as ``build`` derives them (hex digests: no
        escaping), between the quotes the head and the type part leave open."""
        if client_user is None:  # one memo lookup for the usual anonymous visitor
            # (The dict's get, then the memo only on a miss: a Python call fewer per request.)
            return self._anonymous_ids.known(session_key) or self._anonymous_ids(session_key)
        return self._ids(session_key, client_user)

    def _ids(self, session_key: str | None, client_user: str | None = None) -> bytes:
        builder = self._builder
        session_id = (
            builder.session_id_for(session_key) if session_key else builder.process_session_id
        )
        user = builder.client_user_hash(client_user) or builder.anonymous_user(session_id)
        return f'{user}","sessionID":"{session_id}'.encode("ascii")

    def shared(
        self,
        user_agent: str | None,
        device: Mapping[str, str],
        country: Mapping[str, str],
        visit: Mapping[str, str] | None,
        extra: Mapping[str, Any] | None,
    ) -> Shared | None:
        """The members a request's signals share, or None when they need the general path.

        ``device`` holds the device keys of ``user_agent``; ``extra`` the request's properties
        and sample rate, sanitized here as ``build`` would."""
        calendar = self._builder.calendar()
        prefix = self._prefix
        if prefix.calendar is not calendar:  # a new quarter hour
            prefix = self._prefix = self._new_prefix(calendar)
        # (The lookup inline: one call fewer per request for the usual known browser.)
        browser = self._browsers.get(user_agent) if user_agent else None
        if browser is None or browser.device is not device:
            browser = self._browser(user_agent, device)
        if country or visit or extra:
            return self._joined(prefix, browser, country, visit, extra)
        joined = browser.joined
        if joined[0] is not prefix:
            # One tuple, replaced whole: safe if two threads write at once (sync senders).
            joined = browser.joined = (prefix, self._joined(prefix, browser, _NO_KEYS, None, None))
        return joined[1]

    def _browser(self, user_agent: str | None, device: Mapping[str, str]) -> _Browser:
        """A new browser's parts (or a browser whose device mapping the parser replaced)."""
        browser = _Browser(device, encode_members(device))
        if user_agent and len(user_agent) <= KEPT_HEADER_LENGTH:
            if len(self._browsers) >= _BROWSER_LIMIT:
                self._browsers.clear()
            self._browsers[user_agent] = browser
        return browser

    def _new_prefix(self, calendar: Mapping[str, str]) -> _Prefix:
        merged = self._builder.calendar_and_base(calendar)
        return _Prefix(calendar, encode_members(merged), len(merged), frozenset(merged))

    def _joined(
        self,
        prefix: _Prefix,
        browser: _Browser,
        country: Mapping[str, str],
        visit: Mapping[str, str] | None,
        extra: Mapping[str, Any] | None,
    ) -> Shared | None:
        if FLOAT_VALUE_KEY in prefix.keys:  # a default floatValue goes to the top level too
            return None
        defaults = self._builder.default_keys
        parts = [prefix.members]
        count = prefix.key_count
        device = browser.device
        if device:
            if defaults and not defaults.isdisjoint(device):
                return None
            parts.append(browser.device_json)
            count += len(device)
        for keys in (country, visit):
            if keys:
                if defaults and not defaults.isdisjoint(keys):
                    return None
                parts.append(encode_members(keys))
                count += len(keys)
        taken = defaults
        if extra:
            try:
                clean = sanitize_payload(extra, _Quiet(False))
            except _Declined:
                return None
            for key in clean:
                if (
                    key in prefix.keys
                    or key in device
                    or key in country
                    or (visit and key in visit)
                    or key == FLOAT_VALUE_KEY
                ):
                    return None
            if clean:
                parts.append(encode_members(clean))
                count += len(clean)
                taken = defaults.union(clean)
        if count > MAX_KEYS:
            return None
        return Shared(b",".join(parts), count, taken)

    def signal(
        self, signal_type: str, ids: bytes, shared: Shared, own: OwnJSON | None = None
    ) -> bytes | None:
        """One signal: the shared members and ``own``, the signal's own payload. None when
        it needs the general path."""
        type_part = self._types.get(signal_type)
        if type_part is None:
            type_part = self._type_part(signal_type)
            if type_part is None:
                return None
        if own is None or not own.key_count:
            return b"".join((self.head, ids, type_part, shared.members, b"}}"))
        if shared.key_count + own.key_count > MAX_KEYS:
            return None
        taken = shared.taken
        if taken and not all(taken.isdisjoint(keys) for keys in own.keys):
            return None
        if not own.float_json:
            return b"".join((self.head, ids, type_part, shared.members, b",", own.members, b"}}"))
        return b"".join(
            (
                self.head,
                ids,
                type_part,
                shared.members,
                b",",
                own.members,
                b'},"floatValue":',
                own.float_json,
                b"}",
            )
        )

    def keep(
        self,
        key: Hashable,
        shared: Shared,
        start_type: str | None,
        page_type: str | None,
        request_type: str | None,
    ) -> None:
        """Keep what a browser's usual requests share for :meth:`kept` (``key`` names the
        browser and its application, by a token that holds neither): ``shared``, just made,
        and the type parts of the signals they send, for as long as the quarter hour lasts."""
        prefix = self._prefix
        if not shared.members.startswith(prefix.members):  # (another thread's new quarter)
            return
        types = []
        for signal_type in (start_type, page_type, request_type):
            part = None
            if signal_type is not None:
                part = self._types.get(signal_type) or self._type_part(signal_type)
                if part is None:
                    return
            types.append(part)
        if len(self._kept) >= _KEPT_LIMIT:
            self._kept.clear()
        self._kept[key] = KeptSignals(
            prefix, shared.members, shared.key_count, shared.taken, *types
        )

    def kept(self, key: Hashable) -> KeptSignals | None:
        """What :meth:`keep` kept for this browser, while its quarter hour lasts."""
        kept = self._kept.get(key)
        if kept is None:
            return None
        prefix = self._prefix
        if kept.prefix is not prefix or prefix.calendar is not self._builder.calendar():
            return None
        return kept

    def _type_part(self, signal_type: str) -> bytes | None:
        try:
            if not self._builder.is_clean_type(signal_type, _Quiet(False)):
                return None
        except _Declined:
            return None  # the general path reports it
        if len(self._types) >= _TYPE_LIMIT:
            self._types.clear()
        part = self._types[signal_type] = (
            b'","type":'
            + _json(signal_type)
            + b',"isTestMode":'
            + self._test_mode
            + b',"payload":{'
        )
        return part


class KeptSignals(NamedTuple):
    """What a browser's usual requests (no visitor keys, properties or error) share: a
    signal is :attr:`SignalJSON.head`, the session ids, its type part, ``shared``, then its own
    payload (none for the session start: ``}}``)."""

    #: The quarter hour's prefix ``shared`` begins with: kept while it is the writer's.
    prefix: _Prefix
    shared: bytes
    #: As in :class:`Shared`: an own payload must fit beside them.
    key_count: int
    taken: frozenset[str]
    #: The type parts of the session start, the page view and the request (None: not sent).
    start_type: bytes | None
    page_type: bytes | None
    request_type: bytes | None


class _Browser:
    """What is kept per User-Agent: the device parser's mapping for it (one per browser, never
    changed once made; a different one for the same header starts a new entry), its JSON, and
    the members shared by requests with nothing else of their own (no country, visitor keys or
    properties), with the quarter hour's prefix they were joined with."""

    __slots__ = ("device", "device_json", "joined")

    def __init__(self, device: Mapping[str, str], device_json: bytes) -> None:
        self.device = device
        self.device_json = device_json
        self.joined: tuple[_Prefix | None, Shared | None] = (None, None)


class _Prefix(NamedTuple):
    """The calendar keys and the base payload, merged and encoded once per quarter hour."""

    calendar: object
    members: bytes
    key_count: int
    keys: frozenset[str]


_NO_KEYS: Mapping[str, str] = {}


def _json(value: str | float) -> bytes:
    return encode_built_bytes(value)  # type: ignore[arg-type]  # any JSON value, not only a dict
