"""Client configuration: explicit arguments, then ``TELEMETRYDECK_*`` environment variables,
then an adapter's fallbacks (Django's DEBUG, Flask's debug flag), then built-in defaults."""

from __future__ import annotations

import importlib.util
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the HTTP library is imported by the transport, at the first batch
    import httpx

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
    "http_client": "TELEMETRYDECK_HTTP_CLIENT",
}
#: The HTTP client libraries the transport can use (same API).
HTTP_CLIENTS = ("httpx2", "httpx")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_UUID_LIKE = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConfigurationError(ValueError):
    """td_web was configured with a value it cannot work with; the message names the setting."""


@dataclass(frozen=True)
class ClientConfig:
    app_id: str = ""
    salt: str = ""
    endpoint: str = DEFAULT_ENDPOINT
    namespace: str | None = None
    test_mode: bool = False
    enabled: bool = True
    default_payload: Mapping[str, Any] | None = None
    app_version: str | None = None
    #: Raise :class:`SignalError` into the caller for bad input instead of logging it.
    strict: bool = False
    #: Send inline on the calling thread (tests, serverless); no background worker.
    sync: bool = False
    #: An httpx or httpx2 transport; the sender then uses the library it belongs to.
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    #: "httpx2" or "httpx"; None: httpx2 when it is installed, else httpx.
    http_client: str | None = None
    max_queue_size: int = 10_000
    #: What queued records may hold in memory, roughly (each record estimates its own size).
    max_queue_bytes: int = 16_000_000
    max_batch_size: int = 100
    max_batch_bytes: int = 500_000
    flush_interval: float = 5.0
    timeout: float = 10.0
    #: None retries a retryable failure until it succeeds or the client closes.
    max_retries: int | None = None
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    shutdown_timeout: float = 5.0
    #: A SQLite file for signals that outlive an outage longer than the queue can hold, and
    #: for what is unsent at exit; resent oldest first on the next start. Off by default.
    spool_path: str | None = None
    spool_max_signals: int = 100_000
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
    if name in ("test_mode", "enabled", "strict", "sync"):
        return parse_bool(value, setting)
    if name == "http_client":
        if value not in HTTP_CLIENTS:
            raise ConfigurationError(f"{setting} must be 'httpx2' or 'httpx', got {value!r}")
        if importlib.util.find_spec(value) is None:
            raise ConfigurationError(f"{setting} is {value!r}, but {value} is not installed")
        return value
    if name in ("app_id", "salt", "endpoint", "namespace", "app_version", "spool_path"):
        if not isinstance(value, str):
            raise ConfigurationError(f"{setting} must be a string, got {type(value).__name__}")
        return value.strip() if name != "salt" else value
    if name in (
        "max_queue_size",
        "max_queue_bytes",
        "max_batch_size",
        "max_batch_bytes",
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
        and not _NAMESPACE.match(config.namespace)
    ):
        raise ConfigurationError(
            f"namespace must be reverse-DNS style such as 'com.example', got {config.namespace!r}"
        )
    if config.default_payload is not None and not isinstance(config.default_payload, Mapping):
        raise ConfigurationError(
            f"default_payload must be a mapping, got {type(config.default_payload).__name__}"
        )
    for name in ("max_batch_bytes", "max_queue_bytes"):
        if getattr(config, name) < 1024:
            raise ConfigurationError(f"{name} must be at least 1024, got {getattr(config, name)}")
