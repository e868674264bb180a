"""The ASGI ``lifespan`` scope, for every adapter that runs under an ASGI server (the ASGI
middleware, Django's ASGI application): the application gets it untouched, and the client is
flushed before the server hears that shutdown is complete. Framework-free: plain ASGI messages.

The flush needs the server's ``lifespan.shutdown``, and ``atexit`` is no fallback under
uvicorn: after a graceful shutdown it restores the SIGTERM handler it found and re-raises the
signal, so the process ends without running ``atexit`` (with uvicorn 0.47 and newer the
handler it finds is td_web's, which delivers first; older releases find the default). An
application that does not speak lifespan (it raises before receiving anything, or returns
without answering, as plain ASGI apps do) would therefore lose every queued signal; for it
td_web answers the protocol itself (what uvicorn's and hypercorn's default "auto" lifespan
mode does with such an app is to serve it without lifespan).

An application that speaks lifespan is never answered for: when it raises after receiving the
startup message (its startup crashed), or is known to speak the protocol (a Starlette
application, whose router always does) and raises at all, the exception reaches the server
exactly as it would without td_web, and the server decides (uvicorn with ``--lifespan on``
refuses to start, Starlette's test client raises).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread  # httpx's own dependency: asyncio and trio alike

from .._log import logger
from .._types import ASGIApp, Message, Receive, Scope, Send

_STARTED = "lifespan.startup.complete"
_STOPPED = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


class LifespanCall:
    """One lifespan conversation between the server and the application."""

    __slots__ = (
        "_flush",
        "_receive",
        "_send",
        "answered",
        "received",
        "started",
        "stopped",
        "unanswered",
    )

    def __init__(self, flush: Callable[[], object], receive: Receive, send: Send) -> None:
        self._flush = flush
        self._receive = receive
        self._send = send
        self.answered = False
        #: Whether the application asked for a lifespan message: it speaks the protocol.
        self.received = False
        self.started = False
        self.stopped = False
        #: The last message the application received (it has not answered it if it answered
        #: nothing at all).
        self.unanswered: Message | None = None

    async def run(self, app: ASGIApp, scope: Scope, *, speaks_lifespan: bool = False) -> None:
        """Run ``app``'s side of the conversation; ``speaks_lifespan`` when the application is
        known to speak the protocol before it says anything (then any exception is its own)."""
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:
            if speaks_lifespan or self.received or self.answered:
                raise  # an application that speaks lifespan failed: the server must know
            logger.debug(
                "td_web: the application does not speak the ASGI lifespan protocol "
                "(%s: %s); td_web answers it, to deliver queued signals at shutdown",
                type(exc).__name__,
                exc,
            )
            await self._answer(None)
            return
        if not self.answered:
            await self._answer(self.unanswered)
        elif self.started and not self.stopped:
            # It returned after starting up: keep listening so the shutdown still flushes.
            await self._answer(None)

    async def receive(self) -> Message:
        message = await self._receive()
        self.received = True
        self.unanswered = message
        return message

    async def send(self, message: Message) -> None:
        self.answered = True
        kind = message.get("type")
        if kind == _STARTED:
            self.started = True
        elif kind in _STOPPED:
            self.stopped = True
            await self.flush()
        await self._send(message)

    async def flush(self) -> None:
        # On a worker thread: the event loop (and whatever else runs on it) keeps going.
        await anyio.to_thread.run_sync(self._flush)

    async def _answer(self, pending: Message | None) -> None:
        """Speak the protocol for the application until shutdown is answered."""
        while True:
            message = pending if pending is not None else await self._receive()
            pending = None
            kind = message.get("type")
            if kind == "lifespan.startup":
                await self._send({"type": _STARTED})
            elif kind == "lifespan.shutdown":
                await self.flush()
                await self._send({"type": "lifespan.shutdown.complete"})
                return
