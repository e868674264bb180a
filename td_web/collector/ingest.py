"""The ingest endpoint: from one POST request to a stored batch and the answer to send.

Kept apart from the HTTP plumbing so the whole decision (route, size, Content-Type, body,
every signal) reads top to bottom in one place. A request with any problem is rejected whole
and stored as a batch with its violations; only a fully valid batch stores signals.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .store import SignalStore, utc_timestamp
from .validate import (
    Problem,
    Verdict,
    content_type_problem,
    namespace_problem,
    validate_body,
)

logger = logging.getLogger("td_web.collector")

#: TelemetryDeck documents no limit; 5 MB is far above what a sane batch of 100 signals needs.
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
#: How much of a body that did not parse is kept beside its violation.
BODY_EXCERPT_BYTES = 2000

INGEST_PATH = "/v2/"
_NAMESPACE_PATH = re.compile(r"/v2/namespace/([^/]*)/")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to an ingest request."""

    status: int
    body: dict[str, Any]
    #: The body was not read (too large, unknown length): the connection cannot be reused.
    close_connection: bool = False


def parse_ingest_path(path: str) -> str | None:
    """None when ``path`` is no ingest route; '' for /v2/; else the namespace in the path."""
    if path == INGEST_PATH:
        return ""
    match = _NAMESPACE_PATH.fullmatch(path)
    return None if match is None else match.group(1)


class IngestEndpoint:
    def __init__(self, store: SignalStore, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes

    def handle(
        self,
        path: str,
        headers: Callable[[str], str | None],
        read_body: Callable[[int], bytes],
    ) -> Answer:
        """Answer one POST. ``headers(name)`` looks a header up; ``read_body(n)`` reads the
        body, and is not called when the body must not be read."""
        user_agent = headers("User-Agent")
        namespace, problem = _route(path)
        length = _content_length(headers("Content-Length"))
        if length is None or length > self.max_body_bytes:
            # Answer without reading the body; the connection is closed after the answer.
            problem = problem or self._length_problem(length)
            verdict = Verdict([], [problem])
            return self._reject(verdict, namespace, b"", length or 0, user_agent, close=True)

        body = read_body(length)
        problem = problem or content_type_problem(headers("Content-Type"))
        verdict = Verdict([], [problem]) if problem else validate_body(body)
        if not verdict.accepted:
            return self._reject(verdict, namespace, body, len(body), user_agent)
        self.store.record_batch(
            received_at=utc_timestamp(),
            namespace=namespace,
            status=200,
            signals=verdict.signals,
            signal_texts=verdict.sources,
            problems=(),
            body_bytes=len(body),
            user_agent=user_agent,
        )
        return Answer(200, {"accepted": len(verdict.signals)})

    def _length_problem(self, length: int | None) -> Problem:
        if length is None:
            return Problem(
                "body.length_required",
                "send the body with a Content-Length header (chunked bodies are refused)",
            )
        return Problem(
            "body.too_large",
            f"the body is {length} bytes; the collector accepts at most {self.max_body_bytes}",
        )

    def _reject(
        self,
        verdict: Verdict,
        namespace: str | None,
        body: bytes,
        body_bytes: int,
        user_agent: str | None,
        close: bool = False,
    ) -> Answer:
        """Store the problems (nothing of the batch is kept) and say what they were."""
        excerpt = None
        if not verdict.signals and body:  # the body did not parse: keep its start instead
            excerpt = body[:BODY_EXCERPT_BYTES].decode("utf-8", "replace")
        status = verdict.status
        self.store.record_batch(
            received_at=utc_timestamp(),
            namespace=namespace,
            status=status,
            signals=(),
            problems=verdict.problems,
            body_bytes=body_bytes,
            user_agent=user_agent,
            parsed=verdict.signals,
            body_excerpt=excerpt,
        )
        logger.warning(
            "td_web.collector: rejected a request (HTTP %d, %s): %s",
            status,
            user_agent or "no User-Agent",
            _rules_in_brief(verdict.problems),
        )
        body_json = {
            "error": _summary(verdict),
            "accepted": 0,
            "violations": [problem.to_json() for problem in verdict.problems],
            "truncated": verdict.truncated,
        }
        return Answer(status, body_json, close_connection=close)


def _route(path: str) -> tuple[str | None, Problem | None]:
    """(namespace or None, the problem with the path or None)."""
    route = parse_ingest_path(path)
    if route is None:
        return None, Problem(
            "request.unknown_route",
            f"no ingest route at {path!r}; POST signals to /v2/ or /v2/namespace/{{ns}}/ "
            "(the trailing slash is part of the path)",
        )
    if not route:
        return None, None
    problem = namespace_problem(route)
    return (None, problem) if problem else (route, None)


def _content_length(value: str | None) -> int | None:
    if value is None or not _DIGITS.fullmatch(value.strip()):
        return None
    return int(value)


def _summary(verdict: Verdict) -> str:
    problems = verdict.problems
    if len(problems) == 1 and problems[0].signal_index is None:
        problem = problems[0]
        return f"{problem.rule}: {problem.message}"
    bad_signals = len({problem.signal_index for problem in problems})
    return (
        f"the batch was rejected: {len(problems)} problem(s) in {bad_signals} of "
        f"{len(verdict.signals)} signal(s); nothing was stored"
    )


def _rules_in_brief(problems: Sequence[Problem], limit: int = 5) -> str:
    parts = [
        problem.rule
        if problem.signal_index is None
        else f"{problem.rule} (signal {problem.signal_index})"
        for problem in problems[:limit]
    ]
    if len(problems) > limit:
        parts.append(f"and {len(problems) - limit} more")
    return ", ".join(parts)
