"""td_web's session cookie on a Django response, exactly as the core spells it.

Django writes one ``Set-Cookie`` header per entry of ``response.cookies`` (both the WSGI and the
ASGI handler call ``morsel.output()``), and ``response.headers`` can hold only one value per
name. So the cookie goes into ``response.cookies`` as a morsel that outputs the core's header
verbatim: no attribute parsing, no ``Expires`` date formatting (``set_cookie(max_age=...)`` would
format one), and the flags are exactly those of ``Telemetry.set_cookie_header()``.
"""

from __future__ import annotations

from http.cookies import Morsel
from typing import Any

from django.http.response import HttpResponseBase


class RawMorsel(Morsel[str]):
    """A morsel whose ``Set-Cookie`` value is a header the core already built."""

    def __init__(self, name: str, value: str, header: str) -> None:
        super().__init__()
        self.set(name, value, value)
        self.header = header

    def OutputString(self, attrs: Any = None) -> str:
        return self.header

    def __reduce__(self) -> tuple[Any, ...]:
        # Cached responses are pickled; the plain Morsel state would lose the header.
        return (RawMorsel, (self.key, self.value, self.header))


def add_session_cookie(response: HttpResponseBase, header: str) -> None:
    """Add the core's ``Set-Cookie`` value unless the application set that cookie itself."""
    name, _, rest = header.partition("=")
    if name in response.cookies:
        return
    response.cookies[name] = RawMorsel(name, rest.partition(";")[0], header)
