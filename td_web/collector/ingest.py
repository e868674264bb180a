"""The ingest endpoint: from one POST request to a stored batch and the answer to send.

Kept apart from the HTTP plumbing so the whole decision (route, size, Content-Type, body,
every signal) reads top to bottom in one place. A request with any problem is rejected whole
and stored as a batch with its violations; only a fully valid batch stores signals.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to an ingest request."""

    status: int
    body: dict[str, Any]
    #: The body was not read (too large, unknown length): the connection cannot be reused.
    close_connection: bool = False
    headers: dict[str, str] = field(default_factory=dict)


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
        request_problem: Problem | None = None
        route = parse_ingest_path(path)
        namespace = route or None
        if route is None:
            request_problem = Problem(
                "request.unknown_route",
                f"no ingest route at {path!r}; POST signals to /v2/ or /v2/namespace/{{ns}}/ "
                "(the trailing slash is part of the path)",
            )
        if request_problem is None and namespace is not None:
            request_problem = namespace_problem(namespace)
            if request_problem is not None:
                namespace = None  # not worth storing as a namespace

        length = _content_length(headers("Content-Length"))
        if length is None or length > self.max_body_bytes:
            if length is None:
                problem = Problem(
                    "body.length_required",
                    "send the body with a Content-Length header (chunked bodies are refused)",
                )
            else:
                problem = Problem(
                    "body.too_large",
                    f"the body is {length} bytes; the collector accepts at most "
                    f"{self.max_body_bytes}",
                )
            return self._reject(
                request_problem or problem,
                namespace,
                body=b"",
                body_bytes=length or 0,
                user_agent=user_agent,
                close_connection=True,
            )

        body = read_body(length)
        if request_problem is None:
            request_problem = content_type_problem(headers("Content-Type"))
        if request_problem is not None:
            return self._reject(request_problem, namespace, body, len(body), user_agent)

        verdict = validate_body(body)
        received_at = utc_timestamp()
        if verdict.accepted:
            self.store.record_batch(
                received_at=received_at,
                namespace=namespace,
                status=200,
                signals=verdict.signals,
                signal_texts=verdict.sources,
                problems=(),
                body_bytes=len(body),
                user_agent=user_agent,
            )
            return Answer(200, {"accepted": len(verdict.signals)})
        return self._store_rejection(verdict, namespace, body, user_agent, received_at)

    def _reject(
        self,
        problem: Problem,
        namespace: str | None,
        body: bytes,
        body_bytes: int,
        user_agent: str | None,
        close_connection: bool = False,
    ) -> Answer:
        verdict = Verdict([], [problem])
        answer = self._store_rejection(
            verdict, namespace, body, user_agent, utc_timestamp(), body_bytes
        )
        if close_connection:
            return Answer(answer.status, answer.body, close_connection=True)
        return answer

    def _store_rejection(
        self,
        verdict: Verdict,
        namespace: str | None,
        body: bytes,
        user_agent: str | None,
        received_at: str,
        body_bytes: int | None = None,
    ) -> Answer:
        status = verdict.status
        excerpt = None
        if not verdict.signals and body:
            excerpt = body[:BODY_EXCERPT_BYTES].decode("utf-8", "replace")
        self.store.record_batch(
            received_at=received_at,
            namespace=namespace,
            status=status,
            signals=(),
            problems=verdict.problems,
            body_bytes=len(body) if body_bytes is None else body_bytes,
            user_agent=user_agent,
            parsed=verdict.signals,
            body_excerpt=excerpt,
        )
        summary = _summary(verdict)
        logger.warning(
            "td_web.collector: rejected a request (HTTP %d, %s): %s",
            status,
            user_agent or "no User-Agent",
            _rules_in_brief(verdict.problems),
        )
        return Answer(
            status,
            {
                "error": summary,
                "accepted": 0,
                "violations": [problem.to_json() for problem in verdict.problems],
                "truncated": verdict.truncated,
            },
        )


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
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
