"""Route templates in one spelling, ``/items/{item_id}``, whatever the framework's own syntax.

Werkzeug ``/items/<int:item_id>``, Starlette ``/items/{item_id:int}``, Django ``path()``
``items/<int:item_id>/`` and ``re_path()`` ``^items/(?P<item_id>\\d+)$`` (also several regexes
joined by ``include()``) all come out the same.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ANGLE_PARAM = re.compile(r"<(?:[^<>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_BRACE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^{}]*)?\}")
_ANCHORS = re.compile(r"\\A|\\Z|\\z|(?<!\\)\^|(?<!\\)\$")
_ESCAPED = re.compile(r"\\(.)")
_DUPLICATE_SLASHES = re.compile(r"/{2,}")


def normalize_route(template: str) -> str:
    """The route template with parameters as ``{name}``, a leading slash, and no regex syntax."""
    # Remembered only when short: a template with a concrete prefix (an ASGI mount td_web
    # cannot retrace) holds request text, and four thousand of 8 kB each would stay in memory.
    if len(template) > _CACHED_LENGTH:
        return _normalize(template)
    return _cached_normalize(template)


_CACHED_LENGTH = 512


def _normalize(template: str) -> str:
    route = _regex_to_template(template) if _looks_like_regex(template) else template
    route = _ANGLE_PARAM.sub(r"{\1}", route)
    route = _BRACE_PARAM.sub(r"{\1}", route)
    route = _DUPLICATE_SLASHES.sub("/", "/" + route.lstrip("/"))
    return route


_cached_normalize = lru_cache(maxsize=4096)(_normalize)


def _looks_like_regex(template: str) -> bool:
    return "(" in template or "^" in template or "$" in template or "\\" in template


def _regex_to_template(pattern: str) -> str:
    """Named groups become ``{name}``, other groups ``{param}``; anchors and escapes go."""
    out: list[str] = []
    i = 0
    unnamed = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "(":
            end = _group_end(pattern, i)
            group = pattern[i:end]
            named = re.match(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>", group)
            if named:
                out.append("{" + named.group(1) + "}")
            elif group.startswith("(?:") or not group.startswith("(?"):
                unnamed += 1
                out.append("{param}" if unnamed == 1 else f"{{param{unnamed}}}")
            # Look-arounds, flags and comments match no text: they vanish.
            i = end
            continue
        if char in "?*+" or (char == "{" and re.match(r"\{\d*,?\d*\}", pattern[i:])):
            # A quantifier on the previous literal (``/?``): keep the literal, drop the rest.
            if char == "{":
                i = pattern.index("}", i) + 1
            else:
                i += 1
            continue
        if char == "[":
            end = _class_end(pattern, i)
            out.append("{param}")
            i = end
            continue
        out.append(char)
        i += 1
    text = "".join(out)
    text = _ANCHORS.sub("", text)
    return _ESCAPED.sub(r"\1", text)


def _group_end(pattern: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(pattern)


def _class_end(pattern: str, start: int) -> int:
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i + 1
        i += 1
    return len(pattern)
