"""Django's ASGI application plus the ASGI lifespan protocol, so that what td_web still holds
is delivered when the server shuts down.

uvicorn ends a graceful shutdown by re-raising SIGTERM or SIGINT with the handler it found
restored, so atexit handlers, where td_web's client otherwise sends its last signals, never run
(td_web's SIGTERM handler covers uvicorn 0.47 and newer; not older releases, nor SIGINT).
Django's own ASGI handler refuses the lifespan protocol; this wrapper speaks it, so the server's
lifespan shutdown delivers what is queued. It still asks the wrapped application first: one
that speaks lifespan itself (a future Django, or a wrapper around Django) keeps its own
conversation, and its startup errors reach the server unchanged. Servers that exit normally
(daphne, hypercorn, gunicorn's workers) need none of this, and it does no harm there::

    # asgi.py
    from td_web.django.asgi import get_asgi_application

    application = get_asgi_application()
"""

from __future__ import annotations

from typing import Any

from .._types import ASGIApp, Receive, Scope, Send
from .._web.lifespan import LifespanCall
from . import runtime


def get_asgi_application() -> LifespanFlush:
    """``django.core.asgi.get_asgi_application()``, answering lifespan events itself."""
    from django.core.asgi import get_asgi_application as django_asgi_application

    return LifespanFlush(django_asgi_application())  # type: ignore[arg-type]


class LifespanFlush:
    """Passes HTTP to the wrapped app; on ``lifespan.shutdown`` delivers queued signals first
    (Django's handler itself refuses the lifespan protocol, so td_web speaks it for it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await LifespanCall(_flush, receive, send).run(self.app, scope)


def _flush() -> Any:
    web = runtime.built()
    return True if web is None else web.flush_at_shutdown()
