"""Finishing a request when its streamed body ends, not when its headers are ready.

The body of a ``StreamingHttpResponse`` is produced after the middleware returned, so the request
is timed (and recorded) when its iterator is exhausted, fails, or is closed (servers close the
response when the client goes away). ``FileResponse`` keeps its file object so that WSGI servers
can still use ``wsgi.file_wrapper`` (sendfile); it is finished when the response is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

#: Called once the body is complete; gets the exception that interrupted it, if any.
Finish = Callable[[BaseException | None], None]


class FinishingIterator:
    __slots__ = ("_finish", "_iterator")

    def __init__(self, iterator: Iterator[Any], finish: Finish) -> None:
        self._iterator = iterator
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


def finish_after_body(response: StreamingHttpResponse, finish: Finish) -> None:
    """Arrange for ``finish`` to run once, when the response's body has been sent."""
    closers = getattr(response, "_resource_closers", None)
    if getattr(response, "file_to_stream", None) is not None and isinstance(closers, list):
        # Replacing a FileResponse's content would disable sendfile; every server closes the
        # response after sending it, and close() runs these closers.
        closers.append(lambda: finish(None))
        return
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = FinishingAsyncIterator(content, finish)  # type: ignore[arg-type]
    else:
        response.streaming_content = FinishingIterator(content, finish)  # type: ignore[arg-type]
