"""The public client: ``TelemetryDeck``."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ._config import ClientConfig, build_config, config_key
from ._custom import CustomRecord, SignalCall, custom_record
from ._log import logger
from ._option_values import app_id_problem
from ._options import NO_SALT
from ._presets import Presets
from ._properties import properties_without_request
from ._sanitize import SignalError
from ._sender import Sender, Stats
from ._signal import Record, SignalBuilder

#: Builds a sender for a configuration and its builder (``td_web.serverless`` has its own).
SenderFactory = Callable[[ClientConfig, SignalBuilder], Sender]


class _Shared:
    """One sender (one thread, one connection pool) and its builder, used by every client
    built with the same configuration in this process; ``users`` counts those clients."""

    __slots__ = ("builder", "key", "sender", "users")

    def __init__(
        self, key: object, config: ClientConfig, sender_type: SenderFactory = Sender
    ) -> None:
        # Said once per configuration, not once per app built with it.
        problem = app_id_problem(config.app_id)
        if problem:
            logger.warning("td_web: %s", problem)
        if not config.salt:
            logger.info("td_web: %s. Set a salt (TELEMETRYDECK_SALT).", NO_SALT)
        self.key = key
        self.builder = SignalBuilder(config)
        self.sender = sender_type(config, self.builder)
        self.users = 0


_shared_lock = threading.Lock()
_shared: dict[object, _Shared] = {}
#: Shares whose client was garbage-collected, released by whoever next holds the lock: the
#: collection may run on a thread that holds it already (inside ``_acquire``), so the
#: finalizer itself never waits for it.
_collected: deque[_Shared] = deque()


def _acquire(config: ClientConfig) -> _Shared:
    """The shared sender for this configuration: a test suite that builds a thousand apps (or
    every middleware instance of one) ends with one thread, not a thousand."""
    key = config_key(config)
    with _shared_lock:
        shared = _shared.get(key)
        if shared is None or shared.sender.closed:  # closed at exit or by a signal handler
            shared = _shared[key] = _Shared(key, config)
        shared.users += 1
    _release_collected()
    return shared


def _leave(shared: _Shared) -> bool:
    """One user fewer (``_shared_lock`` held); True when it was the last."""
    shared.users -= 1
    last = shared.users == 0
    if last and _shared.get(shared.key) is shared:
        del _shared[shared.key]
    return last


def _release(shared: _Shared, timeout: float) -> bool:
    """One client is done with the shared sender: the last one closes it."""
    with _shared_lock:
        last = _leave(shared)
    _release_collected()
    return shared.sender.close(timeout) if last else shared.sender.flush(timeout)


def _on_collected(shared: _Shared) -> None:
    """A client was garbage-collected: its share is released without blocking."""
    _collected.append(shared)
    _release_collected()


def _release_collected() -> None:
    """Release the shares of collected clients, if the lock is free; the last user of a
    sender lets it deliver what it holds and end."""
    if not _collected or not _shared_lock.acquire(blocking=False):
        return
    orphans = []
    try:
        while _collected:
            shared = _collected.popleft()
            if _leave(shared):
                orphans.append(shared)
    finally:
        _shared_lock.release()
    for shared in orphans:
        shared.sender.orphan()


class TelemetryDeck(Presets):
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
        # Read by every signal() call: one attribute each, not a config lookup and a test.
        self._strict_mode = self.config.strict
        self._per_call_properties = callable(self.config.default_payload)
        self._closed = False
        self._sender: Sender | None = None
        if self.config.enabled:
            shared = self._acquire_sender(self.config)
            self._builder = shared.builder
            self._sender = shared.sender
            # Garbage collection of this client releases its share (never blocking).
            self._finalizer = weakref.finalize(self, _on_collected, shared)
            self._finalizer.atexit = False  # at exit every sender is closed in parallel instead
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

    @staticmethod
    def _acquire_sender(config: ClientConfig) -> _Shared:
        """The sender this client uses: the one shared by its configuration."""
        return _acquire(config)

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    @property
    def sends_in_background(self) -> bool:
        """Whether a worker thread builds and sends the signals (not in sync mode)."""
        return not self.config.sync

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
            properties = (
                properties_without_request(self.config.default_payload)
                if self._per_call_properties
                else None
            )
            if self._strict_mode:
                record = custom_record(
                    self._builder,
                    True,
                    SignalCall(signal_type, payload, float_value, client_user),
                    session_id=session_id,
                    extra_payload=properties,
                )
            else:
                # What custom_record makes of it, without the call and its SignalCall: a
                # seventh of the call's cost (BENCHMARKS.md, issue #14 goal 4).
                record = CustomRecord(
                    signal_type, payload, float_value, client_user, session_id, None, properties
                )
            return self._sender.put(record)
        except SignalError:
            raise
        except Exception:
            if self.config.strict:
                raise
            logger.exception("td_web: signal(%r) failed; dropped", signal_type)
            return False

    def _strict(self) -> bool:
        return self.config.strict

    def enqueue(self, record: Record) -> bool:
        """Queue a prepared record (used by the web adapters); never raises in default mode."""
        sender = self._sender
        if sender is None:
            return False
        if self._closed:
            return sender.refuse()
        try:
            return sender.put(record)
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
        self._finalizer.detach()
        return _release(self._shared, timeout)

    def stats(self) -> Stats:
        """Counters: queued, sent, retried, batches, dropped by reason, pending, last error;
        shared by every client built with the same configuration (they share one sender)."""
        if self._sender is None:
            return Stats()
        stats = self._sender.stats()
        builder = self._builder
        if builder.invalid:
            stats.dropped["invalid"] = stats.dropped.get("invalid", 0) + builder.invalid
        if builder.before_send is not None:
            stats.dropped.update(builder.before_send.dropped_counts())
        return stats

    @property
    def before_send_failures(self) -> int:
        """How often ``before_send`` raised or returned something unusable."""
        hook = self._builder.before_send
        return 0 if hook is None else hook.failed

    def __enter__(self) -> TelemetryDeck:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<TelemetryDeck app_id={self.config.app_id!r} {state} {self.config.ingest_url}>"
