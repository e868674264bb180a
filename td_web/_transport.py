"""One POST of one batch to the ingest, and what its answer means.

The only module that talks to the HTTP client library, and the one seam between httpx2 and
httpx (same API): the library a given ``transport`` belongs to, else the ``http_client``
option, else httpx2 when it is installed, else httpx. It is imported, and the client built,
when the first batch is sent (never for a client that sends nothing), without TLS set-up for
``http://``. Every answer or error becomes an :class:`Answer`: the status policy of
``_policy``, the server's ``Retry-After``, and a description for ``stats().last_error``.

Each POST is one request built here, with what ``Client.post`` would merge into it (the URL,
the client's headers, the timeout) prepared once per client, and handed to the transport the
client uses for that URL (a given ``transport``, an environment's proxy, else its connection
pool): ``Client.post``'s URL parsing, header, cookie and parameter merging, auth flow and
redirect loop were a sixth to a fifth of a POST's CPU. No cookie the ingest sets is kept or
sent back: the request takes none, and the client's cookie jar refuses every one.
"""

from __future__ import annotations

import importlib
import sys
import threading
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import ModuleType
from typing import Any

from ._config import HTTP_CLIENTS
from ._log import throttled
from ._policy import Outcome, classify, parse_retry_after
from ._version import __version__


def transport_library(transport: object) -> ModuleType | None:
    """The library (httpx2 or httpx) whose ``BaseTransport`` this is, subclasses included.

    Found through the class's bases, so only a library already imported is looked at (whoever
    built the transport imported its own) and a module that copies the other's names is not
    mistaken for it.
    """
    for cls in type(transport).__mro__:
        name = cls.__module__.partition(".")[0]
        library = sys.modules.get(name)
        if name in HTTP_CLIENTS and cls is getattr(library, "BaseTransport", None):
            return library
    return None


def http_library(choice: str | None = None, transport: object | None = None) -> ModuleType:
    """httpx2 or httpx, chosen once per sender; also the one td_web's CLI, collector and demo use.

    Imported on call, so that no module imports a library that may not be installed.
    """
    if transport is not None:
        owner = transport_library(transport)
        if owner is not None:
            return owner
    if choice is not None:
        return importlib.import_module(choice)
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def _route(client: Any, url: Any) -> Any:
    """The transport ``client`` sends requests for ``url`` through, or None where the library
    does not say (then requests go through ``Client.send``).

    Called directly, it skips what ``Client.send`` does around it that td_web never uses: the
    auth flow, the redirect loop (never followed by default), event hooks (none), storing
    cookies (refused anyway) and its log line; 5-15 % of a POST's CPU (``sender.py --posts``).
    The URL is the same for every request, so the transport is looked up once.
    """
    lookup = getattr(client, "_transport_for_url", None)  # private, in httpx and httpx2 alike
    return lookup(url) if lookup is not None else None


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
    #: The connection died under the request (a keep-alive connection the server closed
    #: while the process was frozen, as a serverless function is between invocations).
    stale: bool = False


class Transport:
    def __init__(
        self,
        url: str,
        timeout: float,
        transport: Any = None,
        choice: str | None = None,
        connections: int = 1,
        shared_from: Transport | None = None,
    ) -> None:
        self.url = url
        self._timeout = timeout
        #: Requests that may run at once (from as many threads): each keeps its connection.
        self._connections = connections
        self._transport = transport
        self._choice = choice
        self.library: ModuleType | None = None
        self._http: Any = None  # the library's Client
        #: What ``Client.post`` would merge into every request, merged once with the client.
        self._request_url: Any = None
        self._timeouts: dict[str, Any] = {}
        #: The client's transport for the URL (its pool, an environment's proxy, a given
        #: transport), called directly; None: through ``Client.send``.
        self._route: Any = None
        #: The transport whose TLS context a line shares (None: this one's own).
        self._shared_from = shared_from
        self._lines: list[Transport] = []
        self._tls: Any = None
        self._tls_lock = threading.Lock()
        #: What poster lines share is ready (``prepare``), though this transport has no client.
        self._prepared = False

    @property
    def built(self) -> bool:
        """Whether ``prepare`` has run or the HTTP client exists (a first POST builds it)."""
        return self._prepared or self._http is not None

    @property
    def _has_lines(self) -> bool:
        """Whether posters send through lines of their own (``line``), not through this."""
        return self._transport is None and self._connections > 1

    def prepare(self) -> None:
        """Ready now, not at the first POST (a function's cold start, the sender's worker
        before its posters start), what sending needs: the HTTP client, or where poster lines
        send (``line``) only what they share, the library and the TLS context. Then this
        transport's own client is built only if something POSTs through it (sync mode): it
        would be a pool, a cookie jar and ~0.7 ms of CPU for nothing."""
        if self._has_lines:
            self._verify(self._library())
            self._prepared = True
        else:
            self._client()

    def line(self) -> Transport:
        """A transport for one poster thread: a client of its own, with one connection.

        One client's pool of ``max_in_flight`` connections looks at each of them (a socket
        probe for each idle one) whenever a request starts or ends: with 32 kept alive that
        was a sixth of a POST's CPU. A line's pool has only its own. Its TLS context is this
        transport's (the CA bundle loaded once); it is closed with this transport. A given
        ``transport`` is the user's one object, so every poster shares this client then.
        """
        if not self._has_lines:
            return self
        line = Transport(self.url, self._timeout, choice=self._choice, shared_from=self)
        self._lines.append(line)
        return line

    def post(self, body: bytes, timeout: float | None = None) -> Answer:
        """Send one batch (``timeout``: this request's, else the client's); never raises."""
        try:
            client = self._client()
            library = self.library
            assert library is not None  # chosen with the client
            url = self._request_url
            if url is None:
                # Parsed at the first POST, as Client.post did: a URL the library refuses is
                # a failed attempt (below), not an error where the client is built.
                url = self._request_url = library.URL(self.url)
                self._route = _route(client, url)
            request = library.Request(
                "POST",
                url,
                headers=client.headers,
                content=body,
                extensions=self._timeouts
                if timeout is None
                else {"timeout": library.Timeout(timeout).as_dict()},
            )
            route = self._route
            # A closed client (the exit closed it while a sync-mode POST began): Client.send
            # refuses it, where the transport would open a connection nobody closes.
            if route is None or client.is_closed:
                response = client.send(request)
            else:
                response = route.handle_request(request)
                try:
                    response.read()
                finally:
                    response.close()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            library = self.library
            if library is not None and isinstance(exc, library.HTTPError):
                stale = isinstance(
                    exc, (library.RemoteProtocolError, library.ReadError, library.WriteError)
                )
                # The network: retried quietly.
                return Answer(Outcome.RETRY, error, error, stale=stale)
            # Not a network failure (a custom transport's bug, a URL the client cannot use):
            # still one failed attempt with backoff, never a crash loop of tracebacks.
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
        for line in list(self._lines):
            line.close()
        if self._http is not None:
            self._http.close()

    def _verify(self, library: ModuleType) -> Any:
        """TLS verification for this endpoint's clients: one context for all of them."""
        if self._shared_from is not None:
            return self._shared_from._verify(library)
        if not self.url.startswith("https:"):
            # Plain http:// never uses TLS: the CA bundle (tens of ms) is skipped. An https://
            # proxy from the environment is verified all the same: the library connects to a
            # proxy with the proxy's own context, never this one (test_core_transport.py).
            return False
        with self._tls_lock:  # lines build their clients on their own threads
            if self._tls is None:
                create = getattr(library, "create_ssl_context", None)
                # (Without the helper, each client loads the CA bundle itself.)
                self._tls = create() if create is not None else True
            return self._tls

    def _library(self) -> ModuleType:
        if self.library is None:
            self.library = http_library(self._choice, self._transport)
        return self.library

    def _client(self) -> Any:
        if self._http is None:
            library = self._library()
            timeout = library.Timeout(self._timeout)
            # The client's timeout as each request carries it, without Client.send's own copy.
            self._timeouts = {"timeout": timeout.as_dict()}
            self._http = library.Client(
                transport=self._transport,
                verify=self._verify(library),
                timeout=timeout,
                # A cookie from the ingest (or a proxy before it) would tie this process's
                # batches together: refused, so none is stored, none sent back.
                cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
                limits=library.Limits(
                    max_connections=self._connections,
                    max_keepalive_connections=self._connections,
                ),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": (
                        f"td_web/{__version__} python-{library.__name__}/{library.__version__}"
                    ),
                },
            )
        return self._http
