"""Where a request's session comes from: td_web's own cookie, a cookie the site already has, or
(cookieless) a daily-rotating key from the client's address and user agent.

The session *key* found here is secret-ish (a cookie value); it never leaves the process. The
sender derives the wire ``sessionID`` from it with a keyed hash (see ``_hashing``).

A key made from the client's address is an HMAC under a real secret, computed here, so that
neither the queue nor the wire ever holds anything an address could be recovered from: an IPv4
address has 32 bits, and a hash keyed with a public constant falls to a brute force in seconds.
The secret is the salt, else one derived one-way from the framework's own secret
(``SECRET_KEY``); cookieless mode without either refuses to start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache

from .._config import ConfigurationError
from .settings import WebSettings

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SEEN_LIMIT = 50_000
#: Session keys are held in per-process caches (first sightings, session IDs): a longer one,
#: from a cookie or User-Agent of kilobytes, is kept as a digest so that a client cannot make
#: each entry cost more than a few hundred bytes.
_MAX_KEY_LENGTH = 256


@lru_cache(maxsize=64)
def _cookie_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?:^|;)\s*" + re.escape(name) + r"=\s*\"?([^\";]*)")


def cookie_value(cookies: Mapping[str, str] | str | None, name: str) -> str | None:
    """One cookie from a parsed mapping or a raw ``Cookie`` header."""
    if not cookies:
        return None
    if isinstance(cookies, str):
        value = _plain_cookie(cookies, name)
        if value is not None:
            return value
        match = _cookie_pattern(name).search(cookies)
        return match.group(1) if match else None
    return cookies.get(name)


def _plain_cookie(header: str, name: str) -> str | None:
    """The cookie's value when the header spells it plainly (``name=value`` first, or after
    ``"; "``, unquoted, no leading space); None means "ask the regex". Every request reads
    the header, and this is a few string searches instead of a regex search."""
    start = header.find(name)
    if start == -1:
        return None
    # The first occurrence of the name must be the regex's first match: at the start or right
    # after "; ", and followed by "=".
    if start != 0 and header[start - 2 : start] != "; ":
        return None
    value_start = start + len(name) + 1
    if header[value_start - 1 : value_start] != "=":
        return None
    end = header.find(";", value_start)
    value = header[value_start:] if end == -1 else header[value_start:end]
    if '"' in value or (value and value[0].isspace()):
        return None
    return value


class TokenPool:
    """New session tokens (24 URL-safe characters, 144 bits from the OS's CSPRNG, as
    ``secrets.token_urlsafe(18)``), drawn in blocks: one ``os.urandom`` call and one base64
    encoding per 64 tokens instead of one per new visitor (2.2 -> 0.3 µs per token, timeit).
    A forked child starts with an empty pool: it must never hand out its parent's tokens."""

    _BLOCK = 64
    _TOKEN_BYTES = 18  # a multiple of 3: each token is whole base64 characters, no padding

    def __init__(self) -> None:
        self._tokens: list[str] = []
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._tokens.clear)
        # uWSGI forks its workers in C and by default runs no fork hook in them: there the
        # pool also remembers whose it is (a getpid per new visitor, only under uWSGI).
        self._owner = os.getpid() if "uwsgi" in sys.modules else None

    def take(self) -> str:
        if self._owner is not None and self._owner != os.getpid():
            self._tokens.clear()
            self._owner = os.getpid()
        try:
            return self._tokens.pop()  # atomic: threads never get the same token
        except IndexError:
            block = base64.urlsafe_b64encode(os.urandom(self._TOKEN_BYTES * self._BLOCK))
            size = self._TOKEN_BYTES * 4 // 3
            text = block.decode("ascii")
            self._tokens.extend(text[i : i + size] for i in range(size, len(text), size))
            return text[:size]


new_token = TokenPool().take


def valid_token(value: str) -> bool:
    """Whether a cookie value is one of td_web's session tokens (``_TOKEN``)."""
    if (
        16 <= len(value) <= 64
        and value.isascii()
        and value.replace("-", "").replace("_", "").isalnum()
    ):
        return True
    # fullmatch: ``$`` also matches before a trailing newline, which would then be echoed
    # into the Set-Cookie header.
    return _TOKEN.fullmatch(value) is not None


def _bounded(key: str) -> str:
    """The key itself, or a digest of it when it is long (distinct keys stay distinct; the
    ``digest:`` prefix cannot collide with the ``cookie:`` and ``cookieless:`` keys)."""
    if len(key) <= _MAX_KEY_LENGTH:
        return key
    return "digest:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def derivation_secret(salt: str, framework_secret: str | bytes | None) -> bytes | None:
    """The key of td_web's own derivations from the client's address or a foreign cookie: from
    the salt, else from the framework's secret (one-way: the raw ``SECRET_KEY`` is never used
    as a key of anything that reaches the wire), else None."""
    for secret in (salt, framework_secret):
        if secret:
            raw = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
            return hmac.new(raw, b"td_web.session-key-derivation", hashlib.sha256).digest()
    return None


class SessionPolicy:
    def __init__(self, settings: WebSettings, secret: bytes | None = None) -> None:
        self.cookie_name = settings.session_cookie_name
        self.foreign_cookie = settings.session_from_cookie
        self.cookieless = settings.cookieless
        self.max_age = settings.session_cookie_max_age
        #: Whether td_web's own cookie may be set: always but in cookieless mode (with
        #: ``session_from_cookie`` it is the fallback when that cookie is absent).
        self.sets_cookie = not self.cookieless
        if secret is None and self.cookieless:
            raise ConfigurationError(
                "cookieless=True needs a secret, or the session ID would let anyone recover "
                "the visitor's IP address: set a long random salt (TELEMETRYDECK_SALT), or use "
                "a framework with a SECRET_KEY (Django, Flask)"
            )
        #: Keys the address-derived sessions of responses that must not carry a cookie (shared
        #: caches) when no secret is configured: random per process, so never recoverable.
        self._secret = secret or secrets.token_bytes(32)
        self._keys_foreign_cookie = secret is not None
        suffix = f"; Max-Age={settings.session_cookie_max_age}; Path={settings.session_cookie_path}"
        if settings.session_cookie_domain:
            suffix += f"; Domain={settings.session_cookie_domain}"
        suffix += f"; SameSite={settings.session_cookie_samesite}"
        if settings.session_cookie_httponly:
            suffix += "; HttpOnly"
        secure = settings.session_cookie_secure
        # SameSite=None is only honoured with Secure, whatever the scheme.
        force_secure = settings.session_cookie_samesite == "None"
        self._suffix_http = suffix + ("; Secure" if secure or force_secure else "")
        self._suffix_https = suffix + ("" if secure is False and not force_secure else "; Secure")
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._seen_lock = threading.Lock()
        #: The value of td_web's cookie spelled plainly, holding a token: one regex match
        #: reads and validates it, where the name first occurs (``_own_token``). ``\Z``, not
        #: ``$``: that would also match before a trailing newline.
        self._plain_token = re.compile(r"=([A-Za-z0-9_-]{16,64})(?=;|\Z)").match

    def resolve(
        self,
        cookies: Mapping[str, str] | str | None,
        client_addr: str | None,
        user_agent: str | None,
    ) -> tuple[str, bool, bool]:
        """(session key, whether this request starts a new session, whether the session lives
        in td_web's own cookie: the response then sets it, :meth:`set_cookie`).

        In order: the site's cookie (``session_from_cookie``), td_web's own cookie (a new one
        when absent), or in cookieless mode the keyed address derivation. Never an unkeyed
        derivation of the address.
        """
        if self.foreign_cookie is not None:
            key = self._foreign_key(cookies)
            if key is not None:
                return key, self._first_sighting(key), False
        if self.sets_cookie:
            value = self._own_token(cookies) if cookies else None
            if value is not None:
                return value, False, True
            return new_token(), True, True
        key, new = self.address_session(client_addr, user_agent)
        return key, new, False

    def address_session(self, client_addr: str | None, user_agent: str | None) -> tuple[str, bool]:
        """A daily-rotating session from the client's address and user agent, keyed."""
        day = int(time.time() // 86400)
        source = f"{day}\n{client_addr or ''}\n{user_agent or ''}"
        digest = hmac.new(
            self._secret, source.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()
        key = "cookieless:" + digest[:32]
        return key, self._first_sighting(key)

    def existing(self, cookies: Mapping[str, str] | str | None) -> str | None:
        """The session key of the request's cookie, without starting a session."""
        if self.foreign_cookie is not None:
            key = self._foreign_key(cookies)
            if key is not None:
                return key
        if not self.sets_cookie:
            return None
        return self._own_token(cookies)

    def _own_token(self, cookies: Mapping[str, str] | str | None) -> str | None:
        """The token in td_web's own cookie, or None when it is absent or not a token."""
        if type(cookies) is str:
            # The usual header, read where the name first occurs (the cookie cookie_value()
            # reads) when it starts the header or follows "; ": 2,800 instructions fewer
            # than cookie_value() and valid_token() (valgrind); anything else goes to them.
            name = self.cookie_name
            start = cookies.find(name)
            if start == -1:
                return None
            if start == 0 or cookies[start - 2 : start] == "; ":
                match = self._plain_token(cookies, start + len(name))
                if match is not None:
                    return match.group(1)
        value = cookie_value(cookies, self.cookie_name)
        return value if value and valid_token(value) else None

    def _foreign_key(self, cookies: Mapping[str, str] | str | None) -> str | None:
        assert self.foreign_cookie is not None
        value = cookie_value(cookies, self.foreign_cookie)
        if not value:
            return None
        if self._keys_foreign_cookie:
            digest = hmac.new(
                self._secret, value.encode("utf-8", "surrogatepass"), hashlib.sha256
            ).hexdigest()
            return "cookie:" + digest[:32]
        return _bounded("cookie:" + value)

    def set_cookie(self, session_key: str, https: bool) -> tuple[str, str, str, str]:
        """The ``Set-Cookie`` value that keeps (and slides) td_web's session cookie, as
        ``(name, value, attributes, header)``: its attributes one string per scheme, so a
        cache keyed by them (Django's morsels) hashes them once."""
        attributes = self._suffix_https if https else self._suffix_http
        name = self.cookie_name
        return (name, session_key, attributes, f"{name}={session_key}{attributes}")

    def _first_sighting(self, key: str) -> bool:
        """Whether this process has not seen the key within the session timeout.

        Without a cookie of our own there is no other way to tell a new session; with several
        processes each reports its own first sighting.
        """
        now = time.monotonic()
        with self._seen_lock:
            last = self._seen.pop(key, None)
            self._seen[key] = now
            if len(self._seen) > _SEEN_LIMIT:
                self._seen.popitem(last=False)
        return last is None or now - last > self.max_age


def shared_cacheable(cache_control: str | None) -> bool:
    """Whether a response's ``Cache-Control`` lets a shared cache (a CDN, a proxy) store it and
    hand it, Set-Cookie and all, to other visitors: ``public`` or ``s-maxage``, unless
    ``private`` or ``no-store`` says otherwise."""
    if not cache_control:
        return False
    directives = {part.split("=", 1)[0].strip().lower() for part in cache_control.split(",")}
    if "private" in directives or "no-store" in directives:
        return False
    return "public" in directives or "s-maxage" in directives
