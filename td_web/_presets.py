"""TelemetryDeck's preset signals for application code: purchases, durations, handled errors.

Shared by the bare client (``td.purchase(...)``) and the request helper
(``request.telemetry.purchase(...)``): each preset turns its arguments into a signal type, a
payload and a ``floatValue``, and hands them to the caller's own ``signal()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ._log import logger
from ._sanitize import Reporter

PURCHASE_SIGNAL = "TelemetryDeck.Purchase.completed"
ERROR_SIGNAL = "TelemetryDeck.Error.occurred"
PURCHASE_TYPES = ("one-time-purchase", "subscription")
ERROR_CATEGORIES = ("user-input", "app-state", "thrown-exception")
DURATION_KEY = "TelemetryDeck.Signal.durationInSeconds"

#: ``signal(signal_type, payload, float_value=...)`` of the client or request helper.
Send = Callable[..., bool]


def purchase_payload(
    purchase_type: str,
    country_code: str | None,
    currency_code: str | None,
    product_id: str | None,
    payload: Mapping[str, Any] | None,
    strict: bool,
) -> dict[str, Any]:
    reporter = Reporter(strict, PURCHASE_SIGNAL)
    keys: dict[str, Any] = dict(payload or {})
    if purchase_type in PURCHASE_TYPES:
        keys["TelemetryDeck.Purchase.type"] = purchase_type
    else:
        reporter.problem(
            "TelemetryDeck.Purchase.type",
            f"TelemetryDeck.Purchase.type {purchase_type!r} (purchase_type=) dropped: it must "
            "be one of "
            f"{', '.join(PURCHASE_TYPES)}",
        )
    for key, value, length in (
        ("TelemetryDeck.Purchase.countryCode", country_code, 2),
        ("TelemetryDeck.Purchase.currencyCode", currency_code, 3),
    ):
        if value is None:
            continue
        if isinstance(value, str) and len(value) == length and value.isascii() and value.isalpha():
            keys[key] = value.upper()
        else:
            reporter.problem(key, f"{key} {value!r} dropped: it must be a {length}-letter ISO code")
    if product_id is not None:
        keys["TelemetryDeck.Purchase.productID"] = product_id
    return keys


def error_payload(
    error_id: str,
    category: str,
    message: str | None,
    payload: Mapping[str, Any] | None,
    strict: bool,
) -> dict[str, Any]:
    keys: dict[str, Any] = dict(payload or {})
    keys["TelemetryDeck.Error.id"] = error_id
    if category in ERROR_CATEGORIES:
        keys["TelemetryDeck.Error.category"] = category
    else:
        Reporter(strict, ERROR_SIGNAL).problem(
            "TelemetryDeck.Error.category",
            f"error category {category!r} dropped: it must be one of {', '.join(ERROR_CATEGORIES)}",
        )
    if message is not None:
        keys["TelemetryDeck.Error.message"] = message
    return keys


class Duration:
    """``with td.duration("Report.generated"):`` sends the signal when the block completes,
    with ``TelemetryDeck.Signal.durationInSeconds`` (3 decimals) and the seconds as its
    ``floatValue``. A block that raises sends nothing: the operation did not complete."""

    __slots__ = ("_payload", "_send", "_signal_type", "_start", "seconds")

    def __init__(self, send: Send, signal_type: str, payload: Mapping[str, Any] | None) -> None:
        self._send = send
        self._signal_type = signal_type
        self._payload = payload
        self._start = 0.0
        #: The measured duration, once the block has ended.
        self.seconds: float | None = None

    def __enter__(self) -> Duration:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.seconds = time.perf_counter() - self._start
        if exc_type is not None:
            return
        payload = {**(self._payload or {}), DURATION_KEY: f"{self.seconds:.3f}"}
        self._send(self._signal_type, payload, float_value=round(self.seconds, 6))


class Presets:
    """``purchase()``, ``duration()`` and ``error()`` for a class with ``signal()``."""

    __slots__ = ()

    def signal(
        self,
        signal_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        float_value: float | int | str | None = None,
    ) -> bool:
        raise NotImplementedError

    def _strict(self) -> bool:
        raise NotImplementedError

    def purchase(
        self,
        amount_usd: float | int | str,
        *,
        purchase_type: str = "one-time-purchase",
        country_code: str | None = None,
        currency_code: str | None = None,
        product_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> bool:
        """``TelemetryDeck.Purchase.completed`` with the amount in US dollars as ``floatValue``
        (convert other currencies first; ``currency_code`` records what the customer paid
        in)."""
        try:
            keys = purchase_payload(
                purchase_type, country_code, currency_code, product_id, payload, self._strict()
            )
        except Exception:
            if self._strict():
                raise
            logger.exception("td_web: purchase() failed; sent without its purchase keys")
            keys = dict(payload) if isinstance(payload, Mapping) else {}
        return self.signal(PURCHASE_SIGNAL, keys, float_value=amount_usd)

    def error(
        self,
        error_id: str,
        category: str = "app-state",
        message: str | None = None,
        *,
        payload: Mapping[str, Any] | None = None,
    ) -> bool:
        """``TelemetryDeck.Error.occurred`` for an error the application handled itself
        (``category``: ``user-input`` or ``app-state``)."""
        try:
            keys = error_payload(error_id, category, message, payload, self._strict())
        except Exception:
            if self._strict():
                raise
            logger.exception("td_web: error() failed; sent with its id only")
            keys = {"TelemetryDeck.Error.id": error_id}
        return self.signal(ERROR_SIGNAL, keys)

    def duration(self, signal_type: str, payload: Mapping[str, Any] | None = None) -> Duration:
        """A context manager that sends ``signal_type`` with the block's duration."""
        return Duration(self.signal, signal_type, payload)
