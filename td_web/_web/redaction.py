"""Secrets hidden in a path never leave the process.

Paths reach the wire four times (``path``, ``url``, ``referer``, the navigation keys) and they
carry more than routes: ``;jsessionid=...`` matrix parameters, a ``%3Ftoken=...`` that decodes
into something reading as a query string, e-mail addresses, reset tokens, UUIDs and card
numbers in pages no route template describes. Every path is cleaned here, on the sender thread:

- always: each segment is cut at its first ``;``, ``?`` or ``#`` (in a decoded path those can
  only have been percent-encoded, so what follows is a parameter or a disguised query string,
  never a route);
- with ``redact_paths`` (on by default): a segment holding an e-mail address, a UUID, a run of
  13 or more digits, or a long hex or base64 token is replaced whole by ``{email}``, ``{uuid}``,
  ``{number}`` or ``{token}``;
- with ``redact_patterns``: a segment in which one of these regular expressions matches becomes
  ``{redacted}``.

Segments are tested percent-decoded, so ``a%40b.com`` is an e-mail address too; a Referer's
path comes out decoded, like the request's own path, so the two compare.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from urllib.parse import unquote

#: What a segment is cut at (a decoded ``;``, ``?`` or ``#``).
_CUT = re.compile(r"[;?#]")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
#: Card numbers (13 to 19 digits, spaces or dashes allowed between them) and longer digit runs.
_NUMBER = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,}(?!\d)")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_WORD_SEPARATORS = re.compile(r"[-_]")
_HAS_DIGIT = re.compile(r"\d")
_HAS_LETTER = re.compile(r"[A-Za-z]")
#: The shortest segment a built-in detector can match without an "@" (13 digits).
_SHORTEST_DETECTED = 13
#: Paths longer than this are cleaned every time instead of being remembered.
_CACHED_LENGTH = 512

Detector = tuple[str, Callable[[str], bool]]


def _looks_like_token(segment: str) -> bool:
    """A long hex string (a digest, an id) or base64 text (a reset link, a JWT piece); not a
    slug such as ``top-10-tips-for-2024``, whose words are short."""
    for match in _TOKEN_RUN.finditer(segment):
        run = match.group()
        if not _HAS_DIGIT.search(run):
            continue
        if _HEX.fullmatch(run):
            return True
        if (
            len(run) >= 20
            and _HAS_LETTER.search(run)
            and max(len(word) for word in _WORD_SEPARATORS.split(run)) >= 16
        ):
            return True
    return False


def _found(pattern: re.Pattern[str], segment: str) -> bool:
    return pattern.search(segment) is not None


BUILT_IN_DETECTORS: tuple[Detector, ...] = (
    ("{email}", lambda segment: _EMAIL.search(segment) is not None),
    ("{uuid}", lambda segment: _UUID.search(segment) is not None),
    ("{number}", lambda segment: _NUMBER.search(segment) is not None),
    ("{token}", _looks_like_token),
)


class PathRedactor:
    """Cleans paths for one application's settings; remembers the last few hundred."""

    def __init__(self, built_in: bool = True, patterns: Sequence[re.Pattern[str]] = ()) -> None:
        self._built_in = BUILT_IN_DETECTORS if built_in else ()
        self._custom = tuple(("{redacted}", partial(_found, pattern)) for pattern in patterns)
        self._cached = lru_cache(maxsize=1024)(self._clean)

    def path(self, path: str) -> str:
        """A decoded request path (or route template), cleaned."""
        if len(path) > _CACHED_LENGTH:
            return self._clean(path)
        return self._cached(path)

    def encoded_path(self, path: str) -> str:
        """A path as it appears in a URL (a Referer's), decoded and then cleaned."""
        return self.path(unquote(path, errors="replace") if "%" in path else path)

    def _clean(self, path: str) -> str:
        if not path:
            return path
        segments = path.split("/")
        changed = False
        for index, segment in enumerate(segments):
            if not segment:
                continue
            cleaned = self._segment(segment)
            if cleaned is not segment:
                segments[index] = cleaned
                changed = True
        return "/".join(segments) if changed else path

    def _segment(self, segment: str) -> str:
        if ";" in segment or "?" in segment or "#" in segment:
            cut = _CUT.search(segment)
            assert cut is not None
            segment = segment[: cut.start()]
        # Every built-in kind needs an "@" or at least 13 characters: most segments ("items",
        # "42") skip the regexes.
        if len(segment) >= _SHORTEST_DETECTED or "@" in segment:
            for placeholder, detected in self._built_in:
                if detected(segment):
                    return placeholder
        for placeholder, detected in self._custom:
            if detected(segment):
                return placeholder
        return segment
