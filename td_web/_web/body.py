"""Finishing a request when its streamed body ends, not when its headers are ready.

Every adapter whose framework produces a body after the view returned (Django's
``StreamingHttpResponse``, a streamed WSGI body in Flask) wraps it in one of these: the request
is finished when the body is exhausted, fails, or is closed (servers close it when the client
goes away), whichever comes first. ``finish`` must tolerate being called more than once
(``Telemetry.finish`` counts only the first call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

#: Called once the body is complete; gets the exception that interrupted it, if any.
Finish = Callable[[BaseException | None], None]


class FinishingIterator:
    """A body passed through chunk by chunk; ``close()`` closes the wrapped body too."""

    __slots__ = ("_body", "_finish", "_iterator")

    def __init__(self, body: Iterable[Any], finish: Finish) -> None:
        self._body = body
        self._iterator: Iterator[Any] = iter(body)
        self._finish = finish

    def __iter__(self) -> FinishingIterator:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            self._finish(None)
            raise
        except BaseException as exc:
            self._finish(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(None)


class FinishingAsyncIterator:
    # No __iter__: Django tells sync from async content by trying iter() first.
    __slots__ = ("_finish", "_iterator")

    def __init__(self, iterator: AsyncIterator[Any], finish: Finish) -> None:
        self._iterator = iterator
        self._finish = finish

    def __aiter__(self) -> FinishingAsyncIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            self._finish(None)
            raise
        except BaseException as exc:  # CancelledError: the client went away mid-body
            self._finish(exc)
            raise

    def close(self) -> None:
        self._finish(None)
