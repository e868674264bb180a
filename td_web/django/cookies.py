"""td_web's session cookie on a Django response, exactly as the core spells it.

Django writes one ``Set-Cookie`` header per entry of ``response.cookies`` (both the WSGI and the
ASGI handler call ``morsel.output()``), and ``response.headers`` can hold only one value per
name. So the cookie goes into ``response.cookies`` as a morsel that outputs the core's header
verbatim: the flags are exactly those of ``Telemetry.set_cookie_header()``, and there is no
``Expires`` date to format (``set_cookie(max_age=...)`` would format one on every response).

Building a ``Morsel`` the ordinary way costs more than the rest of the request telemetry (it
fills and validates its attributes one by one); this one copies its attributes from a dict
parsed once per distinct set of flags, so code that reads ``morsel["max-age"]`` still finds it.
The core hands the name, value and flags over apart (``Telemetry.response_cookie_parts``):
nothing is split again here.
Measured by ``bench/django_cookie.py`` and valgrind (BENCHMARKS.md, "Django's session cookie").
"""

from __future__ import annotations

from functools import lru_cache
from http.cookies import Morsel
from typing import Any

from django.http.response import HttpResponseBase

from .._web.telemetry import CookieParts

_FLAGS = {"httponly", "secure", "partitioned"}

#: A morsel without running ``__init__`` (a Python frame entered from C: ~2,500 instructions).
_new_morsel = dict.__new__


class RawMorsel(Morsel[str]):
    """A morsel whose ``Set-Cookie`` value is a header the core already built.

    Changing it the way ``response.set_cookie`` does (``set()``, then attributes) makes it
    an ordinary morsel again: its output then follows the new value and attributes.
    """

    # Slots instead of the instance dict Morsel would create for these: four attribute
    # stores cost 2,100 instructions in a dict, 400 in slots (valgrind, Python 3.11).
    __slots__ = ("_coded_value", "_key", "_value", "header")

    _key: str
    _value: str
    _coded_value: str
    header: str | None

    def __init__(self, name: str, value: str, header: str) -> None:
        _fill(self, name, value, header, header[len(name) + 2 + len(value) :])

    def OutputString(self, attrs: Any = None) -> str:
        return self.header or super().OutputString(attrs)

    def output(self, attrs: Any = None, header: str = "Set-Cookie:") -> str:
        # Morsel.output, without its call to OutputString (the handlers call this per cookie).
        return f"{header} {self.header or super().OutputString(attrs)}"

    def set(self, key: str, val: str, coded_val: str) -> None:
        self.header = None
        super().set(key, val, coded_val)

    def __setitem__(self, key: str, value: Any) -> None:
        self.header = None
        super().__setitem__(key, value)

    def update(self, values: Any = (), /, **kwargs: Any) -> None:
        self.header = None
        super().update(values, **kwargs)

    # dict's own mutators, which Morsel leaves as they are: the header follows them too.

    def __ior__(self, values: Any) -> RawMorsel:  # type: ignore[misc,override]
        # ``morsel |= {...}`` is dict's merge, which never calls update().
        self.header = None
        return super().__ior__(values)

    def __delitem__(self, key: str) -> None:
        self.header = None
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.header = None
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self.header = None
        return super().popitem()

    def clear(self) -> None:
        self.header = None
        super().clear()

    def copy(self) -> RawMorsel:
        # Morsel.copy() would copy an instance dict, which this class keeps in slots.
        morsel = _new_morsel(RawMorsel)
        dict.update(morsel, self)
        morsel._key, morsel._value, morsel._coded_value = self._key, self._value, self._coded_value
        morsel.header = self.header
        return morsel

    def __reduce__(self) -> tuple[Any, ...]:
        # Cached responses are pickled; Morsel's own state would lose the header.
        if self.header is None:
            return (_ordinary_morsel, (self._key, self._value, self._coded_value, dict(self)))
        return (RawMorsel, (self._key, self._value, self.header))


def _ordinary_morsel(
    key: str, value: str, coded_value: str, attributes: dict[str, Any]
) -> Morsel[str]:
    morsel: Morsel[str] = Morsel()
    morsel.set(key, value, coded_value)
    dict.update(morsel, attributes)
    return morsel


@lru_cache(maxsize=32)
def _attributes(flags: str) -> dict[str, Any]:
    """Morsel attributes of a header's ``; Max-Age=1800; Path=/; HttpOnly`` tail."""
    attributes: dict[str, Any] = dict.fromkeys(Morsel._reserved, "")  # type: ignore[attr-defined]
    for part in flags.split(";"):
        name, _, value = part.strip().partition("=")
        key = name.lower()
        if key in attributes:
            attributes[key] = True if key in _FLAGS else value
    return attributes


def _fill(morsel: RawMorsel, name: str, value: str, header: str, flags: str) -> None:
    dict.update(morsel, _attributes(flags))
    morsel._key = name
    morsel._value = morsel._coded_value = value
    morsel.header = header


def add_cookie(response: HttpResponseBase, parts: CookieParts) -> None:
    """Add one of the core's cookies (``Telemetry.response_cookie_parts``: name, value and
    attributes handed over apart, nothing to split) unless the application set it itself."""
    name, value, attributes, header = parts
    cookies = response.cookies
    if name not in cookies:
        morsel = _new_morsel(RawMorsel)
        _fill(morsel, name, value, header, attributes)
        # dict's own __setitem__: BaseCookie's would only check that this is a Morsel.
        dict.__setitem__(cookies, name, morsel)
