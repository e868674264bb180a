"""Client configuration: explicit arguments, then ``TELEMETRYDECK_*`` environment variables,
then an adapter's fallbacks (Django's DEBUG, Flask's debug flag), then built-in defaults; each
option read and checked by its row in the option table (:mod:`td_web._options`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# Re-exported: the public exception (``td_web.ConfigurationError``) and the HTTP libraries
# are imported from this module throughout the package.
from ._option_values import HTTP_CLIENTS as HTTP_CLIENTS
from ._option_values import ConfigurationError as ConfigurationError
from ._options import CLIENT, CLIENT_OPTION_NAMES, default, parse_options, unknown_names_error


@dataclass(frozen=True)
class ClientConfig:
    """The client's options, resolved. Each field's default, parser, environment variable and
    meaning are its row in :mod:`td_web._options`."""

    app_id: str = default("app_id")
    salt: str = default("salt")
    endpoint: str = default("endpoint")
    namespace: str | None = default("namespace")
    test_mode: bool = default("test_mode")
    enabled: bool = default("enabled")
    default_payload: Mapping[str, Any] | Callable[[Any], Any] | None = default("default_payload")
    app_version: str | None = default("app_version")
    strict: bool = default("strict")
    sync: bool = default("sync")
    transport: object | None = field(default=default("transport"), repr=False)
    http_client: str | None = default("http_client")
    max_queue_size: int = default("max_queue_size")
    max_queue_bytes: int = default("max_queue_bytes")
    max_batch_size: int = default("max_batch_size")
    max_in_flight: int = default("max_in_flight")
    max_batch_bytes: int = default("max_batch_bytes")
    flush_interval: float = default("flush_interval")
    timeout: float = default("timeout")
    max_retries: int | None = default("max_retries")
    initial_backoff: float = default("initial_backoff")
    max_backoff: float = default("max_backoff")
    shutdown_timeout: float = default("shutdown_timeout")
    spool_path: str | None = default("spool_path")
    spool_max_signals: int = default("spool_max_signals")
    before_send: Callable[[dict[str, Any]], Any] | None = field(
        default=default("before_send"), repr=False
    )
    before_send_errors: str = default("before_send_errors")
    build_number: str | None = default("build_number")
    environment: str | None = default("environment")
    debug: bool | None = default("debug")
    time_zone: str = default("time_zone")
    on_signal: Callable[[dict[str, Any]], None] | None = field(
        default=default("on_signal"), repr=False
    )

    @property
    def ingest_url(self) -> str:
        base = self.endpoint.rstrip("/")
        if self.namespace:
            return f"{base}/v2/namespace/{self.namespace}/"
        return f"{base}/v2/"


#: The client's option names (the table's client rows, which are this dataclass's fields).
OPTION_NAMES = CLIENT_OPTION_NAMES


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


def build_config(
    options: Mapping[str, Any],
    fallbacks: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Resolve options (None means "not given") against the environment and fallbacks."""
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise unknown_names_error("option", "TelemetryDeck(...)", unknown, OPTION_NAMES)
    parsed, problems = parse_options(CLIENT, options, fallbacks, environ)
    if problems:
        raise problems[0]
    config = ClientConfig(**parsed)
    require_app_id(config.enabled, config.app_id)
    return config


def require_app_id(enabled: bool, app_id: str) -> None:
    """The one rule between two options: an enabled client needs an app id."""
    if enabled and not app_id:
        raise ConfigurationError(
            "td_web needs an app id: pass app_id=..., set TELEMETRYDECK_APP_ID, or use the "
            "framework setting (Django TELEMETRYDECK['APP_ID'], Flask TELEMETRYDECK_APP_ID); "
            "set enabled=False to run without one"
        )
