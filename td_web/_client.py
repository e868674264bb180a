"""The public client: ``TelemetryDeck``."""

from __future__ import annotations

import atexit
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ._config import ClientConfig, app_id_problem, build_config
from ._log import logger
from ._presets import Presets
from ._properties import request_properties
from ._sanitize import SignalError
from ._sender import Sender, Stats, close_all_at_exit
from ._signal import BuiltSignal, CustomSignal, Record, SignalBuilder


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
        if self.config.enabled:
            problem = app_id_problem(self.config.app_id)
            if problem:
                logger.warning("td_web: %s", problem)
            if not self.config.salt:
                logger.info(
                    "td_web: no salt configured; user hashes are then plain SHA-256 of the id, "
                    "which a dictionary attack can reverse. Set a salt (TELEMETRYDECK_SALT)."
                )
        self._builder = SignalBuilder(self.config)
        self._sender: Sender | None = (
            Sender(self.config, self._builder) if self.config.enabled else None
        )

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
        try:
            record: Record
            make_properties = self.config.default_payload
            # A callable default_payload outside a request is given None (no request).
            properties = (
                request_properties(make_properties, None) if callable(make_properties) else None
            )
            if self.config.strict:
                built = self._builder.build(
                    signal_type,
                    payload,
                    float_value=float_value,
                    client_user=client_user,
                    session_id=session_id,
                    extra_payload=properties,
                    strict=True,
                )
                assert built is not None  # strict building raises instead of returning None
                record = BuiltSignal(built)
            else:
                record = CustomSignal(
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
        if self._sender is None:
            return False
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
        """Flush within ``timeout``, then stop the worker. Later signals are dropped."""
        if self._sender is None:
            return True
        return self._sender.close(timeout)

    def stats(self) -> Stats:
        """Counters: queued, sent, retried, batches, dropped by reason, pending, last error."""
        if self._sender is None:
            return Stats()
        stats = self._sender.stats()
        if self._builder.before_send is not None:
            stats.dropped.update(self._builder.before_send.dropped_counts())
        return stats

    @property
    def before_send_failures(self) -> int:
        """How often ``before_send`` raised or returned something unusable."""
        hook = self._builder.before_send
        return 0 if hook is None else hook.failed

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


atexit.register(close_all_at_exit)
