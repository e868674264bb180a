"""Privacy canaries and hostile requests, shared by every adapter's tests (issue #9).

*Canaries* are distinctive values planted wherever a request carries something private (user
ids, cookies, query strings, the Referer's query, bodies, credentials, exception messages). An
adapter test drives its framework with them, flushes, and calls :func:`assert_no_canary` on
everything the ingest server received: the raw bytes, their URL-decoded, JSON-unescaped and
HTML-unescaped forms, and the usual encodings of each canary (hex, base64, unsalted digests).
Every canary contains :data:`MARK`, so a cut or partial leak is found too.

*Hostile requests* (:data:`HOSTILE_REQUESTS`) are framework-neutral descriptions of abusive or
broken HTTP requests, as bytes, with builders for a WSGI environ (:func:`wsgi_environ`, also in
the surrogate-escaped flavour some servers produce) and an ASGI scope (:func:`asgi_scope`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus, unquote_to_bytes, urlencode

from ingest_server import IngestServer, Request

from td_web import TelemetryDeck
from td_web.collector.validate import validate_body

# -- the ingest server ---------------------------------------------------------------------------


class IngestWindow:
    """What an ingest server received from the moment the window was opened (tests sharing
    one server and client look only at their own requests)."""

    def __init__(self, ingest: IngestServer) -> None:
        self.ingest = ingest
        self.start = len(ingest.requests)

    @property
    def requests(self) -> list[Request]:
        return list(self.ingest.requests[self.start :])

    @property
    def signals(self) -> list[dict[str, Any]]:
        return [s for r in self.requests if r.reply.accepted for s in r.batch]


def assert_valid_for_the_collector(requests: Iterable[Request]) -> None:
    """Each body passes the local collector's Ingest API v2 validation."""
    for request in requests:
        verdict = validate_body(request.raw)
        problems = [f"{p.rule}: {p.message}" for p in verdict.problems]
        assert verdict.accepted, f"the collector would reject {request.raw[:300]!r}: {problems}"


# -- canaries ------------------------------------------------------------------------------------

#: In every canary. The ingest traffic is hex hashes, ASCII payload keys and the test's own
#: values, none of which spells it, so any occurrence (in any case) is a leak.
MARK = "CANARY"

USER_ID = "CANARY-user-id-7f3a"
USER_NAME = "CANARY-username-7f3a"
#: A valid-looking td_session token (td_web accepts ``[A-Za-z0-9_-]{16,64}``): the adapter
#: keeps it as the session key, so only its keyed hash may leave the process.
SESSION_TOKEN = "CANARY-td_session-token-7f3a"
#: The framework's own session cookie (Django ``sessionid``, Flask ``session``), forged.
FRAMEWORK_SESSION = "CANARY-framework-session-7f3a"
OTHER_COOKIE = "CANARY-other-cookie-7f3a"
QUERY = "CANARY-query-7f3a"
REFERER_QUERY = "CANARY-referer-query-7f3a"
REFERER_USERINFO = "CANARY-referer-userinfo-7f3a"
REFERER_FRAGMENT = "CANARY-referer-fragment-7f3a"
FORM_BODY = "CANARY-form-body-7f3a"
JSON_BODY = "CANARY-json-body-7f3a"
AUTHORIZATION = "CANARY-authorization-7f3a"
API_KEY = "CANARY-x-api-key-7f3a"
USER_AGENT = "CANARY-user-agent-7f3a"
FORWARDED_FOR = "CANARY-x-forwarded-for-7f3a"
EXCEPTION_MESSAGE = "CANARY-exception-message-7f3a"
#: Only ever sent on purpose: the positive control that proves the search can fail.
PLANTED = "CANARY-planted-on-purpose-7f3a"

ALL_CANARIES: tuple[str, ...] = (
    USER_ID,
    USER_NAME,
    SESSION_TOKEN,
    FRAMEWORK_SESSION,
    OTHER_COOKIE,
    QUERY,
    REFERER_QUERY,
    REFERER_USERINFO,
    REFERER_FRAGMENT,
    FORM_BODY,
    JSON_BODY,
    AUTHORIZATION,
    API_KEY,
    USER_AGENT,
    FORWARDED_FOR,
    EXCEPTION_MESSAGE,
    PLANTED,
)

#: Campaign parameters td_web forwards by design; the canary query mixes them with private ones.
CAMPAIGN = {"utm_source": "newsletter", "utm_campaign": "spring-sale"}
#: What the cross-site Referer below must come out as (no userinfo, query or fragment).
CROSS_SITE_REFERER = "https://news.example.org/issue/42"
SAME_SITE_REFERER_PATH = "/from/here"


def canary_query() -> str:
    """A query string with canaries among the forwarded campaign parameters: under private
    names, as a second ``utm_source`` (the first wins), under an upper-case ``UTM_MEDIUM`` (not a
    campaign key), percent-encoded, and behind a ``;`` (not a separator)."""
    return "&".join(
        [
            urlencode({"utm_source": CAMPAIGN["utm_source"]}),
            urlencode({"q": QUERY, "email": f"{QUERY}@example.com"}),
            urlencode({"utm_campaign": CAMPAIGN["utm_campaign"]}),
            urlencode({"utm_source": QUERY, "UTM_MEDIUM": QUERY}),
            "token=" + "".join(f"%{byte:02X}" for byte in QUERY.encode()),
            f"x=1;utm_content={QUERY}",
        ]
    )


def canary_referer(host: str | None = None) -> str:
    """Cross-site (default): canaries in the userinfo, query and fragment. With ``host``: a
    same-site Referer whose path becomes the navigation source, with a canary query."""
    if host is not None:
        return f"http://{host}{SAME_SITE_REFERER_PATH}?back={REFERER_QUERY}#{REFERER_FRAGMENT}"
    return (
        f"https://{REFERER_USERINFO}:hunter2@news.example.org/issue/42"
        f"?session={REFERER_QUERY}&utm_source={REFERER_QUERY}#{REFERER_FRAGMENT}"
    )


def canary_cookie_header(
    session_cookie: tuple[str, str] | None = ("sessionid", FRAMEWORK_SESSION),
    *,
    td_session: str = SESSION_TOKEN,
) -> str:
    """A ``Cookie`` header: td_web's own cookie holding a canary token, the framework's session
    cookie (forged, or a real one the caller passes), and other private cookies."""
    cookies = [f"td_session={td_session}", f"csrftoken={OTHER_COOKIE}"]
    if session_cookie is not None:
        cookies.append(f"{session_cookie[0]}={session_cookie[1]}")
    cookies += [f"remember_token={OTHER_COOKIE}", f'quoted="{OTHER_COOKIE}"']
    return "; ".join(cookies)


@dataclass(frozen=True)
class CanaryRequest:
    """One request full of canaries, for any framework's test client."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes = b""
    content_type: str | None = None

    @property
    def url(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path


def canary_request(
    path: str,
    *,
    method: str = "GET",
    body: Literal["none", "form", "json"] = "none",
    referer: str | None = None,
    cookie: str | None = None,
    authorization: bool = True,
) -> CanaryRequest:
    """The hostile/canary pieces of a request: query, Referer, cookies, credentials, client
    headers and (for POSTs) a body, each carrying canaries."""
    headers = {
        "User-Agent": f"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0 {USER_AGENT}",
        "Accept": "text/html,application/xhtml+xml",
        "Accept-Language": "de-CH,de;q=0.9,en;q=0.5",
        "Referer": referer if referer is not None else canary_referer(),
        "Cookie": cookie if cookie is not None else canary_cookie_header(),
        "X-Api-Key": API_KEY,
        "X-Forwarded-For": FORWARDED_FOR,
    }
    if authorization:
        headers["Authorization"] = f"Bearer {AUTHORIZATION}"
        headers["Proxy-Authorization"] = f"Basic {AUTHORIZATION}"
    content: bytes = b""
    content_type: str | None = None
    if body == "form":
        content = urlencode({"username": USER_NAME, "password": FORM_BODY}).encode()
        content_type = "application/x-www-form-urlencoded"
    elif body == "json":
        content = json.dumps({"email": JSON_BODY, "card": {"number": JSON_BODY}}).encode()
        content_type = "application/json"
    return CanaryRequest(method, path, canary_query(), headers, content, content_type)


#: How the app answers ``canary_visit``: the view behind /boom/ raises.
CANARY_VISIT_STATUSES = [200, 200, 200, 200, 200, 500, 200]


def canary_visit(
    signed_in: str | None, signed_out: str | None, referer_host: str
) -> list[CanaryRequest]:
    """One visitor's tour of the canary app: pages, a form and a JSON POST, a custom signal, an
    error, then a page signed out. ``signed_in`` and ``signed_out`` are Cookie headers."""
    return [
        canary_request("/page/", cookie=signed_in),
        canary_request("/page/", cookie=signed_in, referer=canary_referer(referer_host)),
        canary_request("/form/", method="POST", body="form", cookie=signed_in),
        canary_request("/json/", method="POST", body="json", cookie=signed_in),
        canary_request("/custom/", cookie=signed_in),
        canary_request("/boom/", cookie=signed_in),
        canary_request("/welcome/", cookie=signed_out, authorization=False),
    ]


def assert_the_search_finds(canary: str, ingest: IngestServer) -> None:
    """Positive control: ``canary`` (and only it, with the marker) reached the ingest server,
    and ``assert_no_canary`` fails naming it."""
    import pytest

    assert {leak.canary for leak in find_canaries(everything_received(ingest))} == {
        canary,
        "CANARY",
    }
    with pytest.raises(AssertionError, match=canary):
        assert_no_canary(everything_received(ingest))


def assert_the_error_message_was_sent(ingest: IngestServer) -> None:
    """``send_error_messages``: the raising view's message went out, and the search sees it."""
    error = next(s for s in ingest.accepted_signals if s["type"] == "TelemetryDeck.Error.occurred")
    assert error["payload"]["TelemetryDeck.Error.message"] == f"card declined: {EXCEPTION_MESSAGE}"
    assert_the_search_finds(EXCEPTION_MESSAGE, ingest)


# -- the search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    canary: str
    #: Where it was seen: the decoded view of the traffic and the encoding of the canary.
    form: str
    #: Index of the raw item (body or header block) it was found in.
    item: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.canary!r} as {self.form} in item {self.item}: ...{self.excerpt}..."


def assert_canary_visit_arrived(signals: Sequence[dict[str, Any]], expected_user: str) -> None:
    """What td_web does send from the seven canary requests arrived, and only that: the
    automatic and custom signals, the campaign parameters (only the first ``utm_source``),
    the Referer without its query, a same-site navigation source, an error without its
    message, and the signed-in user only as ``expected_user`` (the salted hash)."""
    types = Counter(s["type"] for s in signals)
    assert (types["pageView"], types["HTTP.request"]) == (3, 4), types
    assert (types["Privacy.checked"], types["TelemetryDeck.Error.occurred"]) == (1, 1), types
    page_views = [s["payload"] for s in signals if s["type"] == "pageView"]
    cross, same = (p for p in page_views if p["path"] == "/page/")
    for payload in (cross, same):
        assert {k: v for k, v in payload.items() if k.startswith("utm_")} == CAMPAIGN
    assert cross["referer"] == CROSS_SITE_REFERER
    assert same["TelemetryDeck.Navigation.sourcePath"] == SAME_SITE_REFERER_PATH
    error = next(s for s in signals if s["type"] == "TelemetryDeck.Error.occurred")
    assert error["payload"]["TelemetryDeck.Error.id"].endswith(".PaymentDeclined")
    assert "TelemetryDeck.Error.message" not in error["payload"]
    by_user = Counter(s["clientUser"] for s in signals)
    assert by_user[expected_user] >= 8  # every signal of the signed-in requests
    signed_out = next(s for s in signals if s["payload"].get("path") == "/welcome/")
    assert signed_out["clientUser"] != expected_user


def everything_received(ingest: IngestServer) -> list[bytes]:
    """Each request the ingest server got, accepted or not: its body, and its request path and
    headers as one more item."""
    items: list[bytes] = []
    for request in list(ingest.requests):
        items.append(request.raw)
        head = [request.path, *(f"{name}: {value}" for name, value in request.headers.items())]
        items.append("\n".join(head).encode("utf-8", "surrogateescape"))
    return items


def find_canaries(
    raw_items: Iterable[bytes], canaries: Iterable[str] = ALL_CANARIES, *, mark: bool = True
) -> list[Leak]:
    """Every canary found in ``raw_items``, in any decoded view and any encoding of it. With
    ``mark``, also any fragment spelling :data:`MARK` (cut or partial canaries)."""
    needles = [(canary, form, text) for canary in canaries for form, text in _encodings(canary)]
    leaks: list[Leak] = []
    for index, raw in enumerate(raw_items):
        for view, text in _decoded_views(raw):
            folded = text.casefold()
            for canary, form, needle in needles:
                # Base64 is case-sensitive; the other spellings are searched in any case.
                haystack = text if form.startswith("base64") else folded
                probe = needle if form.startswith("base64") else needle.casefold()
                at = haystack.find(probe)
                if at >= 0:
                    leaks.append(Leak(canary, f"{form} in {view}", index, _around(text, at)))
            if mark:
                at = folded.find(MARK.casefold())
                if at >= 0:
                    leaks.append(Leak(MARK, f"marker in {view}", index, _around(text, at)))
    return leaks


def assert_no_canary(
    raw_items: Iterable[bytes], canaries: Iterable[str] = ALL_CANARIES, *, mark: bool = True
) -> None:
    """Fail, naming each leak, when a canary (or the marker) is in what the ingest received.

    ``canaries``: extra secrets of a test (a real session key) can be added to the defaults.
    """
    items = list(raw_items)
    assert items, "nothing reached the ingest server: the search would prove nothing"
    leaks = find_canaries(items, canaries, mark=mark)
    if leaks:
        # One line per canary and item (the first view it was seen in), full canaries first.
        first: dict[tuple[str, int], Leak] = {}
        for leak in sorted(leaks, key=lambda leak: leak.canary == MARK):
            first.setdefault((leak.canary, leak.item), leak)
        shown = "\n  ".join(str(leak) for leak in list(first.values())[:20])
        raise AssertionError(f"{len(first)} canary leak(s) reached the ingest server:\n  {shown}")


def _around(text: str, at: int) -> str:
    return text[max(0, at - 40) : at + 60].replace("\n", " ")


def _encodings(canary: str) -> Iterator[tuple[str, str]]:
    """The canary as sent raw, and in the encodings a careless SDK might use (never the salted
    hash, which is what td_web is meant to send)."""
    data = canary.encode("utf-8")
    yield "raw", canary
    yield "hex", data.hex()
    for name in ("sha256", "sha1", "md5"):
        yield f"unsalted {name}", hashlib.new(name, data).hexdigest()
    for shift in range(3):
        # Base64 of the canary at each alignment, without the edge characters that depend on
        # the bytes around it.
        for variant, encode in (("", base64.b64encode), ("url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * shift + data).decode("ascii").rstrip("=")
            start = 0 if shift == 0 else (shift * 4 + 2) // 3
            yield f"base64{variant}", encoded[start:-2]


def _decoded_views(raw: bytes) -> Iterator[tuple[str, str]]:
    text = raw.decode("utf-8", "replace")
    yield "raw bytes", text
    if not raw.isascii():
        yield "raw bytes as latin-1", raw.decode("latin-1")
    yield "url-decoded", _url_decoded(text)
    strings = _json_strings(text)
    if strings is not None:
        joined = "\n".join(strings)
        yield "json strings", joined
        yield "json strings, url-decoded", _url_decoded(joined)
    else:
        yield "\\u-unescaped", _unescape_u(text)
    yield "html-unescaped", html.unescape(text)


def _url_decoded(text: str) -> str:
    """Percent-decoding repeated until nothing changes (double encoding included)."""
    for _ in range(4):
        decoded = unquote_plus(unquote(text))
        if decoded == text:
            break
        text = decoded
    return text


def _json_strings(text: str) -> list[str] | None:
    """Every key and string value of a JSON document (and of JSON documents nested in its
    strings), or None when the text is not JSON."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    found: list[str] = []
    _walk(document, found, 0)
    return found


def _walk(value: Any, found: list[str], depth: int) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(str(key))
            _walk(item, found, depth)
    elif isinstance(value, list):
        for item in value:
            _walk(item, found, depth)
    elif isinstance(value, str):
        found.append(value)
        if depth < 3 and value[:1] in ("{", "[", '"'):
            nested = _json_strings(value)
            if nested is not None:
                found.extend(nested)
    elif value is not None:
        found.append(str(value))


_U_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape_u(text: str) -> str:
    return _U_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


# -- hostile requests ----------------------------------------------------------------------------

DEFAULT_HOST = b"testserver"
BROWSER = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@dataclass(frozen=True)
class HostileRequest:
    """A GET (unless said otherwise) as it arrives on the wire: the request target with its
    percent-encoding, and header values as bytes. ``host`` None sends no Host header."""

    id: str
    target: bytes = b"/echo/"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    host: bytes | None = DEFAULT_HOST
    method: str = "GET"
    #: Whether td_web is expected to record it (False: opted out with ``Sec-GPC: 1``, under
    #: ``respect_gpc``).
    tracked: bool = True
    #: Only meaningful for ASGI: the decoded ``path`` as a server would hand it over, when it
    #: is not simply the target's percent-decoding as UTF-8 (with replacement characters).
    asgi_path: str | None = None

    @property
    def raw_path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]

    def all_headers(self) -> list[tuple[bytes, bytes]]:
        """Host first (unless absent), a browser User-Agent unless the case sets one."""
        headers = [] if self.host is None else [(b"host", self.host)]
        if not any(name.lower() == b"user-agent" for name, _ in self.headers):
            headers.append((b"user-agent", BROWSER))
        headers.extend((name.lower(), value) for name, value in self.headers)
        return headers

    @property
    def varies_by_decoding(self) -> bool:
        """Whether a WSGI server's decoding (latin-1, or UTF-8 with surrogate escapes) makes a
        difference: some byte of the decoded path, the query or a header is not ASCII."""
        parts = [unquote_to_bytes(self.raw_path), self.query]
        parts += [value for _, value in self.all_headers()]
        return not all(part.isascii() for part in parts)


def _h(name: str, value: bytes) -> tuple[bytes, bytes]:
    return (name.encode("ascii"), value)


_KB8 = 8 * 1024 + 17
_TOKEN = b"A1b2C3d4E5f6G7h8I9j0Kx"  # a well-formed (forged) td_session token

HOSTILE_REQUESTS: tuple[HostileRequest, ...] = (
    HostileRequest("plain-request"),
    # -- huge and malformed headers
    HostileRequest("huge-user-agent", headers=(_h("User-Agent", b"Mozilla/5.0 " + b"u" * _KB8),)),
    HostileRequest("huge-custom-header", headers=(_h("X-Filler", b"f" * 2 * _KB8),)),
    HostileRequest("header-with-control-chars", headers=(_h("X-Odd", b"a\x00b\x7fc\x1b[31m"),)),
    # -- Accept-Language
    HostileRequest(
        "accept-language-punctuation", headers=(_h("Accept-Language", b";;;,q=abc,*-*-*"),)
    ),
    HostileRequest(
        "accept-language-500-tags",
        headers=(
            _h(
                "Accept-Language",
                b", ".join(b"x%d-Y%d;q=0.%d" % (i, i, i % 10) for i in range(500)),
            ),
        ),
    ),
    HostileRequest(
        "accept-language-non-ascii",
        headers=(_h("Accept-Language", "dé-ÇH,日本語;q=0.8,zh-漢字".encode()),),
    ),
    HostileRequest(
        "accept-language-latin1-bytes", headers=(_h("Accept-Language", b"\xe9\xff-\xe0"),)
    ),
    HostileRequest("accept-language-huge", headers=(_h("Accept-Language", b"de-" + b"q" * _KB8),)),
    HostileRequest(
        "accept-language-wildcards", headers=(_h("Accept-Language", b"*, *;q=1, -, _-_"),)
    ),
    # -- Referer
    HostileRequest("referer-broken-ipv6", headers=(_h("Referer", b"http://[::1"),)),
    HostileRequest("referer-javascript", headers=(_h("Referer", b"javascript:alert(1)"),)),
    HostileRequest(
        "referer-10kb",
        headers=(_h("Referer", b"https://example.org/" + b"seg/" * 2600 + b"?q=" + b"v" * 100),),
    ),
    HostileRequest(
        "referer-non-ascii", headers=(_h("Referer", "https://exämple.org/päth?q=ü#ß".encode()),)
    ),
    HostileRequest(
        "referer-port-out-of-range", headers=(_h("Referer", b"http://testserver:99999/a"),)
    ),
    HostileRequest(
        "referer-port-not-a-number", headers=(_h("Referer", b"http://testserver:abc/a"),)
    ),
    HostileRequest("referer-relative", headers=(_h("Referer", b"/only/a/path?x=1"),)),
    HostileRequest("referer-empty", headers=(_h("Referer", b""),)),
    HostileRequest("referer-no-host", headers=(_h("Referer", b"http:///path"),)),
    # -- cookies
    HostileRequest("td_session-forged", headers=(_h("Cookie", b"td_session=" + _TOKEN),)),
    HostileRequest("td_session-oversized", headers=(_h("Cookie", b"td_session=" + b"A" * _KB8),)),
    HostileRequest("td_session-quoted", headers=(_h("Cookie", b'td_session="' + _TOKEN + b'"'),)),
    HostileRequest(
        "td_session-duplicated",
        headers=(_h("Cookie", b"td_session=" + _TOKEN + b"; td_session=" + _TOKEN[::-1]),),
    ),
    HostileRequest(
        "td_session-duplicate-headers",
        headers=(_h("Cookie", b"td_session=" + _TOKEN), _h("Cookie", b"td_session=x; a=b")),
    ),
    HostileRequest(
        "td_session-injection",
        headers=(_h("Cookie", b"td_session=abc\r\nSet-Cookie: evil=1; td_session=<script>"),),
    ),
    HostileRequest(
        "td_session-trailing-newline", headers=(_h("Cookie", b"td_session=" + _TOKEN + b"\n"),)
    ),
    HostileRequest(
        "td_session-crlf", headers=(_h("Cookie", b"td_session=" + _TOKEN + b"\r\nX-Evil: 1"),)
    ),
    HostileRequest("td_session-empty", headers=(_h("Cookie", b"td_session=; td_session"),)),
    HostileRequest("cookie-header-malformed", headers=(_h("Cookie", b'=;;; ===; a=b=c; "; ; x'),)),
    HostileRequest(
        "cookie-header-non-ascii", headers=(_h("Cookie", "näme=välue; td_session=ü".encode()),)
    ),
    HostileRequest(
        "cookie-header-latin1-bytes", headers=(_h("Cookie", b"td_session=\xe9\xff; k=\xff"),)
    ),
    HostileRequest(
        "cookie-header-huge",
        headers=(_h("Cookie", b"; ".join(b"c%d=%s" % (i, b"v" * 40) for i in range(400))),),
    ),
    # -- paths
    HostileRequest("path-invalid-utf8-e9", target=b"/caf%E9"),
    HostileRequest("path-invalid-utf8-fffe", target=b"/%ff%fe"),
    HostileRequest("path-valid-utf8", target=b"/caf%C3%A9/%E6%97%A5"),
    HostileRequest("path-dot-segments-and-slashes", target=b"/a/../b//c/./d//"),
    HostileRequest("path-encoded-dots-and-slashes", target=b"/a/%2e%2e/%2F%2Fetc"),
    HostileRequest("path-encoded-nul", target=b"/a%00b"),
    HostileRequest("path-huge", target=b"/" + b"p" * _KB8),
    # -- Host
    HostileRequest("host-empty", host=b""),
    HostileRequest("host-missing", host=None),
    HostileRequest("host-with-space-and-port", host=b"exa mple.com:99999"),
    HostileRequest("host-broken-ipv6", host=b"[::1"),
    HostileRequest("host-port-not-a-number", host=b"testserver:abc"),
    HostileRequest("host-non-ascii", host="tëstserver".encode()),
    HostileRequest("host-huge", host=b"h" * _KB8),
    # -- query strings
    HostileRequest(
        "query-huge", target=b"/echo/?" + b"&".join(b"k%d=%d" % (i, i) for i in range(3000))
    ),
    HostileRequest("query-invalid-utf8", target=b"/echo/?q=%ff%fe&utm_source=%E9&utm_medium=ok"),
    HostileRequest("query-no-values", target=b"/echo/?&&=&utm_source&utm_campaign=&==x"),
    HostileRequest("query-huge-campaign-value", target=b"/echo/?utm_source=" + b"s" * 2 * _KB8),
    # -- Sec-GPC (the tests run with respect_gpc on)
    HostileRequest("sec-gpc-junk", headers=(_h("Sec-GPC", b"yes\x00please"),)),
    HostileRequest("sec-gpc-list", headers=(_h("Sec-GPC", b"1, 1"),)),
    HostileRequest("sec-gpc-huge", headers=(_h("Sec-GPC", b"1" * _KB8),)),
    HostileRequest("sec-gpc-padded-one", headers=(_h("Sec-GPC", b" 1 "),), tracked=False),
    # -- several at once
    HostileRequest(
        "everything-at-once",
        target=b"/caf%E9/../x?utm_source=%ff&q=" + b"z" * 3000,
        headers=(
            _h("Accept-Language", b";;;,q=abc,*-*-*"),
            _h("Referer", b"http://[::1"),
            _h("Cookie", b'td_session="' + b"B" * 70 + b'"; td_session=' + _TOKEN),
            _h("Sec-GPC", b"maybe"),
        ),
        host=b"",
    ),
)

#: Header values that are not valid UTF-8 (nor meaningful latin-1), and raw paths with invalid
#: UTF-8: what only an ASGI server hands over as bytes.
ASGI_HOSTILE_REQUESTS: tuple[HostileRequest, ...] = (
    HostileRequest(
        "asgi-cookie-invalid-utf8", headers=(_h("Cookie", b"td_session=\xff\xfe\x80\x81"),)
    ),
    HostileRequest(
        "asgi-referer-invalid-utf8", headers=(_h("Referer", b"http://testserver/\xc3\x28"),)
    ),
    HostileRequest(
        "asgi-user-agent-invalid-utf8", headers=(_h("User-Agent", b"Mozilla/5.0 \xf0\x28\x8c\x28"),)
    ),
    HostileRequest("asgi-host-invalid-utf8", host=b"\xfe\xff.example"),
    HostileRequest("asgi-gpc-invalid-utf8", headers=(_h("Sec-GPC", b"\x81"),)),
    HostileRequest("asgi-raw-path-invalid-utf8", target=b"/caf\xe9"),
    HostileRequest("asgi-raw-path-surrogate-escaped", target=b"/caf\xe9", asgi_path="/caf\udce9"),
    HostileRequest(
        "asgi-path-not-matching-raw-path", target=b"/%ff", asgi_path="/\x00\ufffd\U0010ffff"
    ),
    HostileRequest("asgi-query-invalid-utf8-bytes", target=b"/echo/?q=\xff\xfe&utm_source=\xe9"),
)


def wsgi_cases() -> list[Any]:
    """``(case, decoding)`` parameters for a WSGI adapter: each request with its environ built
    as PEP 3333 says (latin-1), and surrogate-escaped too where that decodes it differently."""
    import pytest

    cases = []
    for case in HOSTILE_REQUESTS:
        cases.append(pytest.param(case, "latin-1", id=case.id))
        if case.varies_by_decoding:
            cases.append(pytest.param(case, "surrogateescape", id=f"{case.id}-surrogateescape"))
    return cases


def asgi_cases() -> list[Any]:
    """Case parameters for an ASGI adapter: every request, and those only ASGI can carry."""
    import pytest

    return [pytest.param(c, id=c.id) for c in (*HOSTILE_REQUESTS, *ASGI_HOSTILE_REQUESTS)]


def wsgi_environ(
    request: HostileRequest, decoding: Literal["latin-1", "surrogateescape"] = "latin-1"
) -> dict[str, Any]:
    """The environ a WSGI server builds for ``request``.

    ``latin-1``: PEP 3333's native strings (each byte one character). ``surrogateescape``: what
    servers that decode as UTF-8 produce (CGI through ``os.environ``, some embedded servers):
    valid UTF-8 becomes characters, every other byte a lone surrogate.
    """

    def text(value: bytes) -> str:
        if decoding == "latin-1":
            return value.decode("latin-1")
        return value.decode("utf-8", "surrogateescape")

    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": text(unquote_to_bytes(request.raw_path)),
        "QUERY_STRING": text(request.query),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "REMOTE_PORT": "50123",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.all_headers():
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:  # repeated headers are joined, as servers do
            separator = "; " if key == "HTTP_COOKIE" else ","
            environ[key] += separator + text(value)
        else:
            environ[key] = text(value)
    return environ


def asgi_scope(request: HostileRequest) -> dict[str, Any]:
    """The ``http`` scope an ASGI server builds for ``request``: headers and ``raw_path`` as the
    bytes that arrived, ``path`` percent-decoded as UTF-8 with replacement characters."""
    raw_path = request.raw_path
    path = request.asgi_path
    if path is None:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "query_string": request.query,
        "headers": request.all_headers(),
        "client": ("203.0.113.7", 50123),
        "server": ("testserver", 80),
    }


# -- driving apps ----------------------------------------------------------------------------

Message = MutableMapping[str, Any]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass
class Outcome:
    """How an app answered one request: status, headers and body, or the exception it let
    escape (an app may do both: send a 500 page, then re-raise for the server to log)."""

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raised: str | None = None

    def comparable(self, cookie_name: str = "td_session") -> tuple[Any, ...]:
        """Everything but td_web's own ``Set-Cookie`` header."""
        headers = sorted(
            (name.lower(), value)
            for name, value in self.headers
            if not (name.lower() == "set-cookie" and value.lstrip().startswith(cookie_name + "="))
        )
        return (self.status, headers, self.body, self.raised)


_OWN_COOKIE = re.compile(r"td_session=[A-Za-z0-9_-]{16,64}(?:; [\x20-\x7e]+)*")


def assert_own_cookie_well_formed(outcome: Outcome) -> None:
    """td_web's ``Set-Cookie`` (if any) holds one of its tokens and nothing a client sent
    could smuggle in (no control characters: no header injection)."""
    for name, value in outcome.headers:
        if name.lower() == "set-cookie" and value.lstrip().startswith("td_session="):
            assert _OWN_COOKIE.fullmatch(value.lstrip()), f"malformed td_session cookie {value!r}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Outcome:
    """One request through a WSGI app, the way a server drives it (start_response, iterate the
    body, close it)."""
    outcome = Outcome()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        outcome.status = int(status.split(" ", 1)[0])
        outcome.headers = list(headers)
        return lambda data: None

    try:
        body = app(environ, start_response)
        try:
            outcome.body = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
    except Exception as exc:
        outcome.raised = _describe(exc)
    return outcome


async def call_asgi(app: ASGIApp, scope: dict[str, Any], body: bytes = b"") -> Outcome:
    """One ``http`` call: the request body, then a client that stays connected (an app
    listening for a disconnect waits until it cancels that wait itself)."""
    outcome = Outcome()
    incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    chunks: list[bytes] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable: the wait above never ends")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome.status = int(message["status"])
            outcome.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers") or ()
            ]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception as exc:
        outcome.raised = _describe(exc)
    outcome.body = b"".join(chunks)
    return outcome


def request_signals(signals: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The automatic per-request signals among ``signals``."""
    return [s for s in signals if s["type"] in ("pageView", "HTTP.request")]


def check_hostile_outcome(
    case: HostileRequest,
    with_td_web: Outcome,
    without: Outcome,
    client: TelemetryDeck,
    window: IngestWindow,
    records: Iterable[logging.LogRecord],
    *,
    seen_by_td_web: bool = True,
) -> None:
    """What every adapter promises for a hostile request: the app answered exactly as without
    td_web (status, headers but td_web's cookie, body, or the same exception escaping), td_web's
    own cookie is well-formed, td_web logged no error and dropped nothing, whatever it sent
    passes the collector's validation, and a tracked request that got a status was recorded
    once, with that status. ``seen_by_td_web``: False when the framework answers the request
    before any middleware runs."""
    assert client.flush(5)  # first: a failing case must not leave signals to the next
    assert with_td_web.comparable() == without.comparable()
    assert_own_cookie_well_formed(with_td_web)
    errors = [r.getMessage() for r in records if r.name == "td_web" and r.levelno >= 40]
    assert errors == []
    assert client.stats().dropped == {}
    assert_valid_for_the_collector(window.requests)
    if with_td_web.status is None:  # nothing was answered: no status to compare
        return
    sent = request_signals(window.signals)
    if not case.tracked or not seen_by_td_web:
        assert sent == []
        return
    assert [s["payload"]["HTTP.statusCode"] for s in sent] == [str(with_td_web.status)]
