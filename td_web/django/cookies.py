"""td_web's session cookie on a Django response, exactly as the core spells it.

Django writes one ``Set-Cookie`` header per entry of ``response.cookies`` (both the WSGI and the
ASGI handler call ``morsel.output()``), and ``response.headers`` can hold only one value per
name. So the cookie goes into ``response.cookies`` as a morsel that outputs the core's header
verbatim: the flags are exactly those of ``Telemetry.set_cookie_header()``, and there is no
``Expires`` date to format (``set_cookie(max_age=...)`` would format one on every response).

Building a ``Morsel`` the ordinary way costs more than the rest of the request telemetry (it
fills and validates its attributes one by one); this one copies its attributes from a dict
parsed once per distinct set of flags, so code that reads ``morsel["max-age"]`` still finds it.
Measured by ``bench/django_cookie.py`` (BENCHMARKS.md, "Django's session cookie"): the public
``response.set_cookie`` adds about 8 times what this adds to a response.
"""

from __future__ import annotations

from functools import lru_cache
from http.cookies import Morsel
from typing import Any

from django.http.response import HttpResponseBase

_FLAGS = {"httponly", "secure", "partitioned"}


class RawMorsel(Morsel[str]):
    """A morsel whose ``Set-Cookie`` value is a header the core already built."""

    def __init__(self, name: str, value: str, header: str) -> None:
        # No super().__init__(): _attributes() supplies every reserved attribute at once.
        dict.update(self, _attributes(header[len(name) + 1 + len(value) :]))
        self._key = name
        self._value = value
        self._coded_value = value
        self.header = header

    def OutputString(self, attrs: Any = None) -> str:
        return self.header

    def __reduce__(self) -> tuple[Any, ...]:
        # Cached responses are pickled; Morsel's own state would lose the header.
        return (RawMorsel, (self._key, self._value, self.header))


@lru_cache(maxsize=32)
def _attributes(suffix: str) -> dict[str, Any]:
    """Morsel attributes of a header's ``; Max-Age=1800; Path=/; HttpOnly`` tail."""
    attributes: dict[str, Any] = dict.fromkeys(Morsel._reserved, "")  # type: ignore[attr-defined]
    for part in suffix.split(";"):
        name, _, value = part.strip().partition("=")
        key = name.lower()
        if key in attributes:
            attributes[key] = True if key in _FLAGS else value
    return attributes


def add_session_cookie(response: HttpResponseBase, header: str) -> None:
    """Add the core's ``Set-Cookie`` value unless the application set that cookie itself."""
    name, _, rest = header.partition("=")
    cookies = response.cookies
    if name not in cookies:
        # dict's own __setitem__: BaseCookie's would only check that this is a Morsel.
        dict.__setitem__(cookies, name, RawMorsel(name, rest.partition(";")[0], header))
