"""The process's one :class:`WebTelemetry` for Django: built from the settings on first use,
dropped and rebuilt when ``override_settings`` (or anything else sending ``setting_changed``)
changes a setting it was built from.

Every middleware instance shares it: Django builds one middleware chain per handler (the test
client builds one per client), and each chain must not start a sender thread of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed

from .._config import ConfigurationError
from .._log import logger
from .._web import Telemetry, WebTelemetry
from . import conf

#: How long a replaced client may take to deliver what it still holds (a settings change in a
#: test should not stall it for the full shutdown timeout).
REPLACED_CLIENT_TIMEOUT = 1.0

#: ``request.telemetry`` when the settings are invalid: sends nothing (the error itself was
#: logged once when the settings were read, and ``manage.py check`` reports it).
MISCONFIGURED = Telemetry.inert("td_web's TELEMETRYDECK settings are invalid (manage.py check)")


class State:
    """What was built from the current settings; replaced whole, never mutated after build."""

    __slots__ = (
        "active",
        "error",
        "forwarded_host",
        "inside_site_cache",
        "owns_client",
        "proxy_scheme",
        "ready",
        "root_urlconf",
        "web",
    )

    def __init__(self) -> None:
        self.ready = False
        #: The built telemetry, also when its client is disabled.
        self.web: WebTelemetry | None = None
        #: ``web`` when requests should be tracked; None means pass them through untouched.
        self.active: WebTelemetry | None = None
        self.error: ConfigurationError | None = None
        #: False when the client came from ``TELEMETRYDECK["CLIENT"]``: not ours to close.
        self.owns_client = False
        #: Django settings read on every request, read once here instead (each read of
        #: ``django.conf.settings`` costs about half a microsecond).
        self.proxy_scheme = False
        self.forwarded_host = False
        #: ``ROOT_URLCONF`` (a dotted path or a module), None when the project has none.
        self.root_urlconf: Any = None
        #: Whether the per-site cache stores responses after td_web (``caching``).
        self.inside_site_cache = False


_lock = threading.Lock()
_state = State()


def current() -> State:
    """What requests go through now; built on first use. Hot path."""
    state = _state
    return state if state.ready else _build()


def get_web_telemetry() -> WebTelemetry:
    """The :class:`WebTelemetry` built from ``settings.TELEMETRYDECK``.

    Raises :class:`td_web.ConfigurationError` when the settings are invalid (the middleware
    instead logs that once and lets requests through untracked). Its ``client`` sends signals
    from code outside a request, such as management commands and task workers.
    """
    state = _state if _state.ready else _build()
    if state.error is not None:
        raise state.error
    assert state.web is not None
    return state.web


def untracked(state: State, request: Any) -> Telemetry:
    """``request.telemetry`` for a request that is not tracked: it sends nothing.

    Disabled on purpose, it is bound to the disabled client, which drops signals quietly;
    misconfigured, it is the shared helper that says (throttled) that nothing is sent.
    """
    if state.web is None:
        return MISCONFIGURED
    return Telemetry(state.web, None, request, None, False, False)


def built() -> WebTelemetry | None:
    """The telemetry built so far, without building it (shutdown needs nothing new)."""
    return _state.web


def _build() -> State:
    global _state
    with _lock:
        if _state.ready:
            return _state
        state = State()
        try:
            state.proxy_scheme, state.forwarded_host, state.root_urlconf = conf.request_settings()
            state.inside_site_cache = conf.inside_site_cache()
            options = conf.options()
            state.owns_client = options.get("client") is None
            state.web = WebTelemetry.from_options(
                options,
                fallbacks=conf.fallbacks(),
                excluded_prefixes=conf.excluded_prefixes(),
                source=conf.SOURCE,
                framework_secret=conf.secret_key(),
            )
        except ConfigurationError as exc:
            state.error = exc
            logger.error(
                "td_web: the TelemetryDeck settings are invalid, so requests are not tracked "
                "(run `manage.py check` for details): %s",
                exc,
            )
        except Exception as exc:
            state.error = ConfigurationError(f"building td_web from {conf.SOURCE} failed: {exc}")
            logger.exception(
                "td_web: building the TelemetryDeck client failed; requests are not tracked "
                "(not a settings problem: please report it with this traceback)"
            )
        if state.web is not None and state.web.client.enabled:
            state.active = state.web
        state.ready = True
        _state = state
        return state


def reset() -> None:
    """Forget what was built; the next request builds anew. A client we built is closed once
    the requests still in flight with it have finished (their signals are not lost)."""
    global _state
    with _lock:
        old, _state = _state, State()
    if old.web is not None and old.owns_client:
        old.web.retire(REPLACED_CLIENT_TIMEOUT)


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in conf.WATCHED_SETTINGS:
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="td_web.django.runtime")
