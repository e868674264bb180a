"""One POST of one batch to the ingest, and what its answer means.

The only module that talks to the HTTP client library. It builds the client when the first
batch is sent (never for a client that sends nothing), without TLS set-up for ``http://``,
and turns every answer or error into an :class:`Answer`: the status policy of ``_policy``,
the server's ``Retry-After``, and a description for ``stats().last_error`` and the logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ._log import throttled
from ._policy import Outcome, classify, parse_retry_after
from ._version import __version__

USER_AGENT = f"td_web/{__version__} python-httpx/{httpx.__version__}"


@dataclass(frozen=True)
class Answer:
    """What one attempt came to."""

    outcome: Outcome
    #: "HTTP 503", "ConnectError: ...": for log lines.
    detail: str
    #: With the server's reason when it gave one; None when the batch was accepted.
    error: str | None = None
    #: Seconds the server asked us to wait before the next attempt.
    retry_after: float | None = None


class Transport:
    def __init__(
        self, url: str, timeout: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.Client | None = None

    @property
    def built(self) -> bool:
        """Whether the HTTP client exists yet (it is built by the first POST)."""
        return self._http is not None

    def post(self, body: bytes) -> Answer:
        """Send one batch; never raises."""
        try:
            response = self._client().post(self.url, content=body)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return Answer(Outcome.RETRY, error, error)
        except Exception as exc:
            # Not a network failure (a custom transport's bug, a URL the client cannot use):
            # still one failed attempt with backoff, never a crash loop of tracebacks.
            error = f"{type(exc).__name__}: {exc}"
            throttled.error(
                "transport_bug",
                "td_web: the HTTP client raised %s while sending; treated as a failed attempt",
                error,
            )
            return Answer(Outcome.RETRY, f"unexpected {error}", error)
        outcome = classify(response.status_code)
        detail = f"HTTP {response.status_code}"
        return Answer(
            outcome,
            detail,
            None if outcome is Outcome.SENT else f"{detail}: {response.text[:200]}",
            parse_retry_after(response.headers.get("retry-after")),
        )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                transport=self._transport,
                # Plain http:// never uses TLS: loading the CA bundle (tens of ms) is skipped.
                verify=self.url.startswith("https:"),
                timeout=httpx.Timeout(self._timeout),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": USER_AGENT,
                },
            )
        return self._http
