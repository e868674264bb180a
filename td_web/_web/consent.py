"""Consent and opt-out, remembered in one first-party cookie (``td_consent`` by default).

``no`` (written by ``opt_out``): nothing at all is sent for that browser, not even the
session-started or error signals. ``yes`` (written by ``opt_in``): tracked, also under
``consent_required``. No cookie: tracked, unless ``consent_required`` is on. Any other value is
not ours to guess: it is treated as no consent (and logged), the safe side either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._log import logger, throttled
from .sessions import cookie_value
from .settings import WebSettings

GRANTED = "yes"
DENIED = "no"
#: About a year: long enough that an opt-out sticks, short of browsers' 400-day cap.
CONSENT_MAX_AGE = 365 * 24 * 3600


class ConsentPolicy:
    def __init__(self, settings: WebSettings) -> None:
        self.cookie_name = settings.consent_cookie_name
        self.required = settings.consent_required
        self.session_cookie_name = settings.session_cookie_name
        self.path = settings.session_cookie_path
        self.domain = settings.session_cookie_domain
        self.samesite = settings.session_cookie_samesite
        self.secure = settings.session_cookie_secure
        #: Deleted on opt-out with the session cookie: a visit count kept for 400 days is not
        #: kept for a browser that asked for nothing to be kept.
        self.visitor_cookie_name = settings.visitor_cookie_name if settings.visitor_cookie else None
        self._cookieless = settings.cookieless
        suffix = f"; Max-Age={{max_age}}; Path={self.path}"
        if self.domain:
            suffix += f"; Domain={self.domain}"
        self._suffix = suffix + f"; SameSite={self.samesite}; HttpOnly"

    def refusal(self, cookies: Mapping[str, str] | str | None) -> str | None:
        """Why this browser must not be tracked, or None when it may be."""
        if not cookies or self.cookie_name not in cookies:
            return "consent_required=True and no consent recorded" if self.required else None
        value = cookie_value(cookies, self.cookie_name)
        if value == GRANTED:
            return None
        if value == DENIED:
            return "the browser opted out"
        throttled.warning(
            "consent-junk",
            "td_web: the %s cookie holds %r, neither %r nor %r; treated as no consent. "
            "Write it with opt_in() / opt_out() or one of those values.",
            self.cookie_name,
            (value or "")[:40],
            GRANTED,
            DENIED,
        )
        return f"the {self.cookie_name} cookie is unreadable"

    def cookie_header(self, value: str, https: bool) -> str:
        """The ``Set-Cookie`` value that records a choice (``yes`` or ``no``)."""
        secure = self.secure if self.secure is not None else https
        header = f"{self.cookie_name}={value}" + self._suffix.format(max_age=CONSENT_MAX_AGE)
        return header + "; Secure" if secure or self.samesite == "None" else header

    def forget_headers(self, app_set_cookies: tuple[str, ...] = ()) -> list[str]:
        """The ``Set-Cookie`` values deleting td_web's session and visitor cookies (opt-out),
        but for a cookie the application already set or deleted on this response."""
        domain = f"; Domain={self.domain}" if self.domain else ""
        # Cookieless mode writes no session cookie: there is none to delete.
        targets = [] if self._cookieless else [(self.session_cookie_name, self.path)]
        if self.visitor_cookie_name is not None:
            targets.append((self.visitor_cookie_name, "/"))
        headers = []
        for name, path in targets:
            if not any(value.lstrip().startswith(name + "=") for value in app_set_cookies):
                headers.append(f"{name}=; Max-Age=0; Path={path}{domain}; SameSite={self.samesite}")
        return headers

    def write(self, response: Any, value: str, https: bool) -> None:
        """Record a choice on a Django, Flask/Werkzeug or Starlette response (they share
        ``set_cookie``/``delete_cookie``); opting out also deletes td_web's session and
        visitor cookies."""
        secure = self.secure if self.secure is not None else https
        response.set_cookie(
            self.cookie_name,
            value,
            max_age=CONSENT_MAX_AGE,
            path=self.path,
            domain=self.domain,
            secure=secure or self.samesite == "None",
            httponly=True,
            samesite=self.samesite,
        )
        if value == DENIED:
            try:
                response.delete_cookie(self.session_cookie_name, path=self.path, domain=self.domain)
                if self.visitor_cookie_name is not None:
                    response.delete_cookie(self.visitor_cookie_name, path="/", domain=self.domain)
            except Exception:
                logger.exception("td_web: deleting td_web's cookies on opt-out failed")


def opt_out(response: Any) -> None:
    """Opt the browser of the current request out, on the response the view returns: sets
    the opt-out cookie, deletes td_web's session cookie, and silences this request."""
    _record(response, DENIED)


def opt_in(response: Any) -> None:
    """Record consent (or undo an opt-out) on the response; tracking starts with the
    browser's next request."""
    _record(response, GRANTED)


def _record(response: Any, value: str) -> None:
    from .telemetry import current

    helper = current()
    web, view = helper.web_and_view()
    policy = web.consent if web is not None else ConsentPolicy(WebSettings())
    try:
        policy.write(response, value, view is not None and view.scheme == "https")
    except Exception:
        # Not a response with set_cookie(): the app's mistake, which strict mode would raise.
        if web is not None and web.client.config.strict:
            raise
        logger.exception(
            "td_web: recording %s on %s failed; pass the response the view returns",
            "the opt-out" if value == DENIED else "consent",
            type(response).__name__,
        )
        return
    if value == DENIED and web is not None:
        helper.silence("the browser opted out")
