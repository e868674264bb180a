"""Django's ASGI application plus the ASGI lifespan protocol, so that what td_web still holds
is delivered when the server shuts down.

uvicorn (0.29 and later) ends a graceful shutdown by re-raising SIGTERM or SIGINT with the
default handler restored: the process dies on the spot and atexit handlers, where td_web's
client otherwise sends its last signals, never run. Django's own ASGI handler refuses the
lifespan protocol, so the server has no other moment to tell the application it is stopping.
Servers that exit normally (daphne, hypercorn, gunicorn's workers) need none of this, and it
does no harm there::

    # asgi.py
    from td_web.django.asgi import get_asgi_application

    application = get_asgi_application()
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._log import logger
from . import runtime

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def get_asgi_application() -> LifespanFlush:
    """``django.core.asgi.get_asgi_application()``, answering lifespan events itself."""
    from django.core.asgi import get_asgi_application as django_asgi_application

    return LifespanFlush(django_asgi_application())  # type: ignore[arg-type]


class LifespanFlush:
    """Passes HTTP to the wrapped app; on ``lifespan.shutdown`` delivers queued signals first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # On a thread: the event loop keeps serving whatever else runs on it.
                await asyncio.to_thread(_flush)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _flush() -> None:
    try:
        if not runtime.flush():
            logger.warning("td_web: not every signal was delivered within shutdown_timeout")
    except Exception:
        logger.exception("td_web: delivering signals at lifespan shutdown failed")
