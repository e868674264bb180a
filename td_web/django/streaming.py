"""Finishing a Django request when its streamed body ends (the iterators are the core's,
``_web/body.py``), not when its headers are ready.

The body of a ``StreamingHttpResponse`` is produced after the middleware returned, so the request
is timed (and recorded) when its iterator is exhausted, fails, or is closed (servers close the
response when the client goes away). ``FileResponse`` keeps its file object so that WSGI servers
can still use ``wsgi.file_wrapper`` (sendfile); it is finished when the response is closed.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse

from .._web.body import Finish, FinishingAsyncIterator, FinishingIterator


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
