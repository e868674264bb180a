"""Client configuration: explicit arguments, then ``TELEMETRYDECK_*`` environment variables,
then an adapter's fallbacks (Django's DEBUG, Flask's debug flag), then built-in defaults."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_ENDPOINT = "https://nom.telemetrydeck.com"

#: Option name -> environment variable. Only these are read from the environment.
ENVIRONMENT_VARIABLES = {
    "app_id": "TELEMETRYDECK_APP_ID",
    "salt": "TELEMETRYDECK_SALT",
    "endpoint": "TELEMETRYDECK_ENDPOINT",
    "namespace": "TELEMETRYDECK_NAMESPACE",
    "test_mode": "TELEMETRYDECK_TEST_MODE",
    "enabled": "TELEMETRYDECK_ENABLED",
    "app_version": "TELEMETRYDECK_APP_VERSION",
    "spool_path": "TELEMETRYDECK_SPOOL_PATH",
    "build_number": "TELEMETRYDECK_BUILD_NUMBER",
    "environment": "TELEMETRYDECK_ENVIRONMENT",
    "http_client": "TELEMETRYDECK_HTTP_CLIENT",
}
#: The most batches a sender may post at once (``max_in_flight``).
MAX_IN_FLIGHT = 64
#: The HTTP client libraries the transport can use (same API).
HTTP_CLIENTS = ("httpx2", "httpx")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_UUID_LIKE = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
#: A namespace as the client sends to it and the local collector accepts it (fullmatch).
NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ConfigurationError(ValueError):
    """td_web was configured with a value it cannot work with; the message names the setting."""


@dataclass(frozen=True)
class ClientConfig:
    #: Your TelemetryDeck app id (a UUID); required unless ``enabled`` is off.
    app_id: str = ""
    #: Appended to user ids before hashing, and the key of derived session IDs: set a long
    #: random one.
    salt: str = ""
    #: Base URL of the ingest server; signals go to ``{endpoint}/v2/``.
    endpoint: str = DEFAULT_ENDPOINT
    #: Sends to ``{endpoint}/v2/namespace/{namespace}/`` instead.
    namespace: str | None = None
    #: ``isTestMode`` on every signal (Django falls back to ``DEBUG``, Flask to debug/testing).
    test_mode: bool = False
    #: Off: every call is accepted and nothing is sent.
    enabled: bool = True
    #: A mapping, or a callable given the request view (the framework request where the
    #: adapter has one; None on the bare client) that returns one, per request.
    default_payload: Mapping[str, Any] | Callable[[Any], Any] | None = None
    app_version: str | None = None
    #: Raise :class:`SignalError` into the caller for bad input instead of logging it.
    strict: bool = False
    #: Send inline on the calling thread (tests, serverless); no background worker.
    sync: bool = False
    #: An httpx or httpx2 transport; the sender then uses the library it belongs to.
    transport: object | None = field(default=None, repr=False)
    #: "httpx2" or "httpx"; None: httpx2 when it is installed, else httpx.
    http_client: str | None = None
    max_queue_size: int = 10_000
    #: What queued records may hold in memory, roughly (each record estimates its own size).
    max_queue_bytes: int = 16_000_000
    max_batch_size: int = 100
    #: Batches posted at once at most, each on its own connection, when full batches wait
    #: (or a flush, close or the interval sends what is queued); a quiet site sends one at a
    #: time. What is in flight counts against the queue's caps.
    max_in_flight: int = 32
    #: Bytes per POST at most.
    max_batch_bytes: int = 500_000
    #: Seconds between sends when no batch is full.
    flush_interval: float = 5.0
    #: HTTP timeout of one POST, in seconds.
    timeout: float = 10.0
    #: None retries a retryable failure until it succeeds or the client closes.
    max_retries: int | None = None
    #: Exponential backoff with jitter between retries: the first wait and the longest, in
    #: seconds.
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    #: How long the flush at exit (or SIGTERM, or lifespan shutdown) may take, in seconds.
    shutdown_timeout: float = 5.0
    #: A SQLite file for signals that outlive an outage longer than the queue can hold, and
    #: for what is unsent at exit; resent oldest first on the next start. Off by default.
    spool_path: str | None = None
    #: The spool's cap; beyond it the oldest signals are dropped and counted.
    spool_max_signals: int = 100_000
    #: Sees each finished signal on the sender thread; returns it, a changed copy, or None.
    before_send: Callable[[dict[str, Any]], Any] | None = field(default=None, repr=False)
    #: What happens to a signal when before_send raises or returns junk: "send" or "drop".
    before_send_errors: str = "send"
    #: Sent as ``TelemetryDeck.AppInfo.buildNumber`` and ``.versionAndBuildNumber``.
    build_number: str | None = None
    #: Sent as ``TelemetryDeck.RunContext.targetEnvironment`` (``production``, ``staging``).
    environment: str | None = None
    #: Sent as ``TelemetryDeck.RunContext.isDebug`` and ``TelemetryDeck.SDK.buildType``;
    #: the adapters fall back to Django's ``DEBUG`` and Flask's or Starlette's ``debug``.
    debug: bool | None = None
    #: The IANA time zone of the ``TelemetryDeck.Calendar.*`` keys (default UTC).
    time_zone: str = "UTC"
    #: Receives every signal dict as it is queued (``td_web.testing`` uses it).
    on_signal: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    @property
    def ingest_url(self) -> str:
        base = self.endpoint.rstrip("/")
        if self.namespace:
            return f"{base}/v2/namespace/{self.namespace}/"
        return f"{base}/v2/"


OPTION_NAMES = frozenset(f.name for f in fields(ClientConfig))


def config_key(config: ClientConfig) -> tuple[object, ...]:
    """A hashable identity of a resolved configuration: equal keys may share one sender."""
    return tuple(_hashable(getattr(config, f.name)) for f in fields(config))


def _hashable(value: object) -> object:
    if isinstance(value, Mapping):
        return ("mapping", repr(sorted(value.items(), key=repr)))
    try:
        hash(value)
    except TypeError:
        return object()  # nothing else equals it: never shared
    return value


def parse_bool(value: object, setting: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(
        f"{setting} must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}"
    )


def sync_callable(value: object, setting: str) -> Any:
    """A plain callable: an ``async def`` would return a coroutine that is never awaited."""
    if not callable(value):
        raise ConfigurationError(f"{setting} must be a callable, got {value!r}")
    if inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(
        getattr(value, "__call__", None)  # noqa: B004 - an instance with an async __call__
    ):
        raise ConfigurationError(
            f"{setting} must be a plain function, not an async def ({value!r}): td_web calls it "
            "where no event loop awaits it"
        )
    return value


def time_zone_problem(name: str) -> str | None:
    """Why a time zone name cannot be used for the calendar keys, or None."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        return f"not an IANA time zone name such as 'UTC' or 'Europe/Berlin' ({exc})"
    return None


def app_id_problem(app_id: str) -> str | None:
    """Why an app id looks wrong, or None. TelemetryDeck app ids are UUIDs."""
    if not _UUID_LIKE.match(app_id.strip()):
        return (
            f"app id {app_id!r} does not look like a TelemetryDeck app id (a UUID such as "
            "'B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE'); signals may be rejected"
        )
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """Why an endpoint cannot be sent to, or None: found here, once, rather than by a sender
    that would fail on every batch."""
    if not re.match(r"^https?://[^/\s]+", endpoint):
        return "not an http:// or https:// URL with a host"
    if re.search(r"[\s\x00-\x1f\x7f]", endpoint):
        return "it contains whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(endpoint)
        _ = parts.port  # parsing the port is the check: "abc" or 99999 raise
    except ValueError as exc:
        return str(exc)
    if not parts.hostname:
        return "no host"
    if parts.query or parts.fragment:
        return "a base URL has no query or fragment"
    return None


def build_config(
    options: Mapping[str, Any],
    fallbacks: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Resolve options (None means "not given") against the environment and fallbacks."""
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise ConfigurationError(
            f"unknown td_web option(s): {', '.join(sorted(unknown))}; "
            f"known options are {', '.join(sorted(OPTION_NAMES))}"
        )
    env = os.environ if environ is None else environ
    resolved: dict[str, Any] = {}
    for name in OPTION_NAMES:
        value = options.get(name)
        setting = name
        if value is None and name in ENVIRONMENT_VARIABLES and ENVIRONMENT_VARIABLES[name] in env:
            setting = ENVIRONMENT_VARIABLES[name]
            value = env[setting]
        if value is None and fallbacks:
            value = fallbacks.get(name)
        if value is not None:
            resolved[name] = _coerce(name, value, setting)
    config = ClientConfig(**resolved)
    _validate(config)
    return config


def _coerce(name: str, value: Any, setting: str) -> Any:
    if name in ("test_mode", "enabled", "strict", "sync", "debug"):
        return parse_bool(value, setting)
    if name == "http_client":
        if value not in HTTP_CLIENTS:
            raise ConfigurationError(f"{setting} must be 'httpx2' or 'httpx', got {value!r}")
        if importlib.util.find_spec(value) is None:
            raise ConfigurationError(f"{setting} is {value!r}, but {value} is not installed")
        return value
    if name in (
        "app_id",
        "salt",
        "endpoint",
        "namespace",
        "app_version",
        "spool_path",
        "build_number",
        "environment",
        "time_zone",
    ):
        if not isinstance(value, str):
            raise ConfigurationError(f"{setting} must be a string, got {type(value).__name__}")
        return value.strip() if name != "salt" else value
    if name in (
        "max_queue_size",
        "max_queue_bytes",
        "max_batch_size",
        "max_batch_bytes",
        "max_in_flight",
        "max_retries",
        "spool_max_signals",
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(f"{setting} must be a non-negative integer, got {value!r}")
        if name != "max_retries" and value == 0:
            raise ConfigurationError(f"{setting} must be at least 1, got 0")
        return value
    if name in ("flush_interval", "timeout", "initial_backoff", "max_backoff", "shutdown_timeout"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigurationError(f"{setting} must be a non-negative number, got {value!r}")
        return float(value)
    if name in ("before_send", "on_signal"):
        return sync_callable(value, setting)
    if name == "transport":
        # Imported here: the transport module imports this one.
        from ._transport import transport_library

        if transport_library(value) is None:
            raise ConfigurationError(
                f"{setting} must be an httpx2 or httpx transport (a BaseTransport), "
                f"got {type(value).__name__}"
            )
        return value
    if name == "before_send_errors":
        from ._before_send import parse_on_error

        return parse_on_error(value, setting)
    return value


def _validate(config: ClientConfig) -> None:
    if config.enabled and not config.app_id:
        raise ConfigurationError(
            "td_web needs an app id: pass app_id=..., set TELEMETRYDECK_APP_ID, or use the "
            "framework setting (Django TELEMETRYDECK['APP_ID'], Flask TELEMETRYDECK_APP_ID); "
            "set enabled=False to run without one"
        )
    problem = endpoint_problem(config.endpoint)
    if problem:
        raise ConfigurationError(
            f"endpoint must be an http(s) base URL such as {DEFAULT_ENDPOINT!r}, "
            f"got {config.endpoint!r} ({problem})"
        )
    if (
        config.namespace is not None
        and config.namespace != ""
        and not NAMESPACE.fullmatch(config.namespace)
    ):
        raise ConfigurationError(
            f"namespace must be reverse-DNS style such as 'com.example', got {config.namespace!r}"
        )
    if config.default_payload is not None and not isinstance(config.default_payload, Mapping):
        if not callable(config.default_payload):
            raise ConfigurationError(
                "default_payload must be a mapping or a callable returning one, got "
                f"{config.default_payload!r}"
            )
        sync_callable(config.default_payload, "default_payload")
    zone_problem = time_zone_problem(config.time_zone)
    if zone_problem:
        raise ConfigurationError(f"time_zone {config.time_zone!r}: {zone_problem}")
    if config.max_in_flight > MAX_IN_FLIGHT:
        # Each batch in flight holds a thread and a connection to the ingest.
        raise ConfigurationError(
            f"max_in_flight must be at most {MAX_IN_FLIGHT}, got {config.max_in_flight}"
        )
    for name in ("max_batch_bytes", "max_queue_bytes"):
        if getattr(config, name) < 1024:
            raise ConfigurationError(f"{name} must be at least 1024, got {getattr(config, name)}")
