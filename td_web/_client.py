"""The public client: ``TelemetryDeck``."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ._config import ClientConfig, app_id_problem, build_config, config_key
from ._log import logger
from ._sanitize import SignalError
from ._sender import Sender, Stats
from ._signal import BuiltSignal, CustomSignal, Record, SignalBuilder


class _Shared:
    """One sender (one thread, one connection pool) and its builder, used by every client
    built with the same configuration in this process; ``users`` counts those clients."""

    __slots__ = ("builder", "key", "sender", "users")

    def __init__(self, key: object, config: ClientConfig) -> None:
        # Said once per configuration, not once per app built with it.
        problem = app_id_problem(config.app_id)
        if problem:
            logger.warning("td_web: %s", problem)
        if not config.salt:
            logger.info(
                "td_web: no salt configured; user hashes are then plain SHA-256 of the id, "
                "which a dictionary attack can reverse. Set a salt (TELEMETRYDECK_SALT)."
            )
        self.key = key
        self.builder = SignalBuilder(config)
        self.sender = Sender(config, self.builder)
        self.users = 0


_shared_lock = threading.Lock()
_shared: dict[object, _Shared] = {}


def _acquire(config: ClientConfig) -> _Shared:
    """The shared sender for this configuration: a test suite that builds a thousand apps (or
    every middleware instance of one) ends with one thread, not a thousand."""
    key = config_key(config)
    with _shared_lock:
        shared = _shared.get(key)
        if shared is None or shared.sender.closed:  # closed at exit or by a signal handler
            shared = _shared[key] = _Shared(key, config)
        shared.users += 1
        return shared


def _release(shared: _Shared, timeout: float | None) -> bool:
    """One client is done with the shared sender. The last one closes it (``timeout``), or,
    when it was garbage-collected (``None``), lets it deliver what it holds and end."""
    with _shared_lock:
        shared.users -= 1
        last = shared.users == 0
        if last and _shared.get(shared.key) is shared:
            del _shared[shared.key]
    if not last:
        return True if timeout is None else shared.sender.flush(timeout)
    if timeout is None:
        shared.sender.orphan()
        return True
    return shared.sender.close(timeout)


class TelemetryDeck:
    """A TelemetryDeck client: ``signal()`` queues and returns at once; a background thread
    batches and sends.

    Every option may be given as an argument or, for the common ones, as a ``TELEMETRYDECK_*``
    environment variable; an argument wins. See the README for the full list.
    """

    def __init__(
        self,
        app_id: str | None = None,
        salt: str | None = None,
        endpoint: str | None = None,
        namespace: str | None = None,
        test_mode: bool | None = None,
        default_payload: Mapping[str, Any] | None = None,
        *,
        enabled: bool | None = None,
        _fallbacks: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        given = {
            "app_id": app_id,
            "salt": salt,
            "endpoint": endpoint,
            "namespace": namespace,
            "test_mode": test_mode,
            "default_payload": default_payload,
            "enabled": enabled,
            **options,
        }
        self.config: ClientConfig = build_config(given, _fallbacks)
        self._closed = False
        self._sender: Sender | None = None
        if self.config.enabled:
            shared = _acquire(self.config)
            self._builder = shared.builder
            self._sender = shared.sender
            # Garbage collection of this client releases its share (never blocking).
            self._release = weakref.finalize(self, _release, shared, None)
            self._release.atexit = False  # at exit every sender is closed in parallel instead
            self._shared = shared
        else:
            self._builder = SignalBuilder(self.config)

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], fallbacks: Mapping[str, Any] | None = None
    ) -> TelemetryDeck:
        """A client from a mapping of option names (adapters' settings), with fallbacks that
        apply only where neither the mapping nor the environment sets a value."""
        return cls(**dict(options), _fallbacks=fallbacks)

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    @property
    def builder(self) -> SignalBuilder:
        return self._builder

    def signal(
        self,
        signal_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        float_value: float | int | str | None = None,
        client_user: str | None = None,
        session_id: str | None = None,
    ) -> bool:
        """Queue one signal; never blocks on the network. Returns whether it was queued.

        ``client_user`` is hashed with the salt before it leaves the process; ``session_id``
        is sent as given (pass an opaque value, never a raw cookie).
        """
        if self._sender is None:
            return False
        if self._closed:
            return self._sender.refuse()
        try:
            record: Record
            if self.config.strict:
                built = self._builder.build(
                    signal_type,
                    payload,
                    float_value=float_value,
                    client_user=client_user,
                    session_id=session_id,
                    strict=True,
                )
                assert built is not None  # strict building raises instead of returning None
                record = BuiltSignal(built)
            else:
                record = CustomSignal(signal_type, payload, float_value, client_user, session_id)
            return self._sender.put(record)
        except SignalError:
            raise
        except Exception:
            if self.config.strict:
                raise
            logger.exception("td_web: signal(%r) failed; dropped", signal_type)
            return False

    def enqueue(self, record: Record) -> bool:
        """Queue a prepared record (used by the web adapters); never raises in default mode."""
        if self._sender is None:
            return False
        if self._closed:
            return self._sender.refuse()
        try:
            return self._sender.put(record)
        except Exception:
            if self.config.strict:
                raise
            logger.exception("td_web: queueing a signal failed; dropped")
            return False

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds until everything queued before the call was delivered
        or finally dropped. True when it was; a disabled client returns True at once."""
        if self._sender is None:
            return True
        return self._sender.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse later signals and deliver the accepted ones within ``timeout``; the last
        client sharing this configuration's sender also stops its worker. True when nothing
        was left behind."""
        if self._sender is None:
            return True
        if self._closed:
            return True
        self._closed = True
        self._release.detach()
        return _release(self._shared, timeout)

    def stats(self) -> Stats:
        """Counters: queued, sent, retried, batches, dropped by reason, pending, last error;
        shared by every client built with the same configuration (they share one sender)."""
        if self._sender is None:
            return Stats()
        return self._sender.stats()

    def __enter__(self) -> TelemetryDeck:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<TelemetryDeck app_id={self.config.app_id!r} {state} {self.config.ingest_url}>"
