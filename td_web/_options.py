"""Every td_web option, once: its name, type, default, environment variable, parser, the layer
that uses it and what it means.

Everything else derives from this table: the fields of :class:`td_web._config.ClientConfig`
and :class:`td_web._web.settings.WebSettings`, the environment variables the client reads,
the validation of each value, the framework spellings (Django ``TELEMETRYDECK`` keys, Flask
``TELEMETRYDECK_*`` config keys, ASGI keyword arguments), the unknown-name errors, Django's
system checks, ``td-web check`` and the docs' options page. A new option is one row here and
one typed field in its layer's dataclass (a test keeps the two in step).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import _option_values as values
from ._option_values import DEFAULT_ENDPOINT, ConfigurationError, Parser

Layer = Literal["client", "web"]
#: The client (``td_web.TelemetryDeck``, its sender): ``ClientConfig``.
CLIENT: Layer = "client"
#: Request telemetry, shared by every adapter: ``WebSettings``.
WEB: Layer = "web"

#: Adapters also take ``client=``: an existing ``td_web.TelemetryDeck`` to send through, in
#: place of the client options. It is an object handed over, not a value, so it has no row.
CLIENT_HAND_OFF = "client"

#: Said when no salt is configured (logged by the client, shown by ``td-web check``).
NO_SALT = (
    "no salt configured; user hashes are then plain SHA-256 of the id, which a dictionary "
    "attack can reverse"
)


@dataclass(frozen=True)
class Option:
    name: str
    layer: Layer
    #: The field's annotation in its layer's dataclass, as written there.
    type: str
    default: Any
    #: Checks and converts a given value (never the default); raises ConfigurationError.
    parse: Parser
    #: One line for the docs.
    doc: str
    #: The environment variable the client falls back to, or None.
    env: str | None = None
    #: None switches a feature off (a signal type) instead of meaning "the default".
    none_is_a_value: bool = False

    @property
    def django_key(self) -> str:
        return django_key(self.name)

    @property
    def flask_key(self) -> str:
        return flask_key(self.name)


def django_key(name: str) -> str:
    """A name's key in Django's ``TELEMETRYDECK`` setting."""
    return name.upper()


#: What every Flask config key of td_web starts with.
FLASK_PREFIX = "TELEMETRYDECK_"


def flask_key(name: str) -> str:
    """A name's Flask config key (also the spelling of the environment variables)."""
    return FLASK_PREFIX + name.upper()


# Parsers that need their feature's code (the HTTP libraries, route normalisation, the
# proxies' type). Those modules import the client's configuration, which is built from this
# table, so each is imported when a value is parsed, not above.


def _transport(value: Any, setting: str) -> Any:
    from ._transport import transport_library

    if transport_library(value) is None:
        raise ConfigurationError(
            f"{setting} must be an httpx2 or httpx transport (a BaseTransport), "
            f"got {type(value).__name__}"
        )
    return value


def _routes(value: Any, setting: str) -> frozenset[str]:
    from ._web.response_filter import route_key

    return frozenset(route_key(route) for route in values.route_templates(value, setting))


def _trusted_proxies(value: Any, setting: str) -> Any:
    from ._web.proxies import TrustedProxies

    return TrustedProxies.parse(value, setting)


_CALLABLE = "Callable[[dict[str, Any]], Any] | None"
_REQUEST_CALLABLE = "Callable[[Any], object] | None"

_TABLE = (
    # -- the client -------------------------------------------------------------------------
    Option("app_id", CLIENT, "str", "", values.text,
           "Your TelemetryDeck app id (a UUID); required unless `enabled` is off.",
           env="TELEMETRYDECK_APP_ID"),
    Option("salt", CLIENT, "str", "", values.secret,
           "Appended to user ids before hashing, and the key of derived session IDs: set a "
           "long random one.", env="TELEMETRYDECK_SALT"),
    Option("endpoint", CLIENT, "str", DEFAULT_ENDPOINT, values.endpoint,
           "Base URL of the ingest server; signals go to `{endpoint}/v2/`.",
           env="TELEMETRYDECK_ENDPOINT"),
    Option("namespace", CLIENT, "str | None", None, values.namespace,
           "Sends to `{endpoint}/v2/namespace/{namespace}/` instead.",
           env="TELEMETRYDECK_NAMESPACE"),
    Option("test_mode", CLIENT, "bool", False, values.parse_bool,
           "`isTestMode` on every signal (Django falls back to `DEBUG`, Flask to "
           "debug/testing).", env="TELEMETRYDECK_TEST_MODE"),
    Option("enabled", CLIENT, "bool", True, values.parse_bool,
           "Off: every call is accepted and nothing is sent.", env="TELEMETRYDECK_ENABLED"),
    Option("default_payload", CLIENT, "Mapping[str, Any] | Callable[[Any], Any] | None", None,
           values.default_payload,
           "Payload of every signal: a mapping, or a callable given the request view (the "
           "framework request where the adapter has one; None on the bare client) that "
           "returns one, per request."),
    Option("app_version", CLIENT, "str | None", None, values.text,
           "Sent as `TelemetryDeck.AppInfo.version`.",
           env="TELEMETRYDECK_APP_VERSION"),
    Option("strict", CLIENT, "bool", False, values.parse_bool,
           "Raise `SignalError` into the caller for bad input instead of logging it."),
    Option("sync", CLIENT, "bool", False, values.parse_bool,
           "Send inline on the calling thread (tests, serverless); no background worker."),
    Option("transport", CLIENT, "object | None", None, _transport,
           "An httpx or httpx2 transport; the sender then uses the library it belongs to."),
    Option("http_client", CLIENT, "str | None", None, values.http_client,
           '"httpx2" or "httpx"; None: httpx2 when it is installed, else httpx.',
           env="TELEMETRYDECK_HTTP_CLIENT"),
    Option("max_queue_size", CLIENT, "int", 10_000, values.positive_count,
           "Signals held in memory; beyond it new signals are dropped and counted."),
    Option("max_queue_bytes", CLIENT, "int", 16_000_000, values.at_least(1024),
           "What queued records may hold in memory, roughly (each record estimates its own "
           "size)."),
    Option("max_batch_size", CLIENT, "int", 100, values.positive_count,
           "Signals per POST at most."),
    # Each batch in flight holds a thread and a connection to the ingest: at most 64.
    Option("max_in_flight", CLIENT, "int", 32, values.between(1, 64),
           "Batches posted at once at most, each on its own connection, when full batches "
           "wait (or a flush, close or the interval sends what is queued); a quiet site sends "
           "one at a time. What is in flight counts against the queue's caps."),
    Option("max_batch_bytes", CLIENT, "int", 500_000, values.at_least(1024),
           "Bytes per POST at most."),
    Option("flush_interval", CLIENT, "float", 5.0, values.duration,
           "Seconds between sends when no batch is full."),
    Option("timeout", CLIENT, "float", 10.0, values.duration,
           "HTTP timeout of one POST, in seconds."),
    Option("max_retries", CLIENT, "int | None", None, values.count,
           "Attempts per batch before it is dropped; None retries until it succeeds or the "
           "client closes."),
    Option("initial_backoff", CLIENT, "float", 1.0, values.duration,
           "The first wait between retries (exponential backoff with jitter), in seconds."),
    Option("max_backoff", CLIENT, "float", 60.0, values.duration,
           "The longest wait between retries, in seconds."),
    Option("shutdown_timeout", CLIENT, "float", 5.0, values.duration,
           "How long the flush at exit (or SIGTERM, or lifespan shutdown) may take, in "
           "seconds."),
    Option("spool_path", CLIENT, "str | None", None, values.text,
           "A SQLite file for signals that outlive an outage longer than the queue can "
           "hold, and for what is unsent at exit; resent oldest first on the next start. Off "
           "by default.", env="TELEMETRYDECK_SPOOL_PATH"),
    Option("spool_max_signals", CLIENT, "int", 100_000, values.positive_count,
           "The spool's cap; beyond it the oldest signals are dropped and counted."),
    Option("before_send", CLIENT, _CALLABLE, None, values.sync_callable,
           "Sees each finished signal on the sender thread; returns it, a changed copy, or "
           "None."),
    Option("before_send_errors", CLIENT, "str", "send", values.before_send_errors,
           'What happens to a signal when before_send raises or returns junk: "send" or '
           '"drop".'),
    Option("build_number", CLIENT, "str | None", None, values.text,
           "Sent as `TelemetryDeck.AppInfo.buildNumber` and `.versionAndBuildNumber`.",
           env="TELEMETRYDECK_BUILD_NUMBER"),
    Option("environment", CLIENT, "str | None", None, values.text,
           "Sent as `TelemetryDeck.RunContext.targetEnvironment` (`production`, `staging`).",
           env="TELEMETRYDECK_ENVIRONMENT"),
    Option("debug", CLIENT, "bool | None", None, values.parse_bool,
           "Sent as `TelemetryDeck.RunContext.isDebug` and `TelemetryDeck.SDK.buildType`; "
           "the adapters fall back to Django's `DEBUG` and Flask's or Starlette's `debug`."),
    Option("time_zone", CLIENT, "str", "UTC", values.time_zone,
           "The IANA time zone of the `TelemetryDeck.Calendar.*` keys."),
    Option("on_signal", CLIENT, "Callable[[dict[str, Any]], None] | None", None,
           values.sync_callable,
           "Receives every signal dict as it is queued (`td_web.testing` uses it)."),
    # -- request telemetry ------------------------------------------------------------------
    Option("page_view_signal", WEB, "str | None", "pageView", values.signal_type,
           "Signal type of a page view; None sends none.", none_is_a_value=True),
    Option("request_signal", WEB, "str | None", "HTTP.request", values.signal_type,
           "Signal type of a request that is no page view; None sends none.",
           none_is_a_value=True),
    Option("session_started_signal", WEB, "str | None", "TelemetryDeck.Session.started",
           values.signal_type, "Signal type of a session's first request; None sends none.",
           none_is_a_value=True),
    Option("error_signal", WEB, "str | None", "TelemetryDeck.Error.occurred",
           values.signal_type, "Signal type of an unhandled exception; None sends none.",
           none_is_a_value=True),
    Option("send_error_messages", WEB, "bool", False, values.parse_bool,
           "Send exception messages with the error signal (they may hold personal data)."),
    Option("session_cookie_name", WEB, "str", "td_session", values.cookie_name,
           "td_web's own session cookie."),
    Option("session_cookie_max_age", WEB, "int", 30 * 60, values.seconds,
           "Seconds of inactivity after which a session ends."),
    Option("session_cookie_path", WEB, "str", "/", values.cookie_path,
           "The session cookie's `Path`."),
    Option("session_cookie_domain", WEB, "str | None", None, values.cookie_domain,
           "The session cookie's `Domain`; None: this host only."),
    Option("session_cookie_samesite", WEB, "str", "Lax", values.samesite,
           "The session cookie's `SameSite`: Lax, Strict or None."),
    Option("session_cookie_httponly", WEB, "bool", True, values.parse_bool,
           "The session cookie is `HttpOnly`."),
    Option("session_cookie_secure", WEB, "bool | None", None, values.optional_bool,
           "The session cookie is `Secure`; None: on HTTPS requests only."),
    Option("session_from_cookie", WEB, "str | None", None, values.cookie_name,
           "Derive sessions from an existing cookie (e.g. Django's `sessionid`) instead."),
    Option("cookieless", WEB, "bool", False, values.parse_bool,
           "Set no cookie; sessions from a daily-rotating keyed hash of address and user "
           "agent."),
    Option("respect_gpc", WEB, "bool", False, values.parse_bool,
           "Send nothing for requests carrying `Sec-GPC: 1`."),
    Option("exclude_paths", WEB, "tuple[str, ...]", (), values.paths,
           "More path prefixes never tracked."),
    Option("exclude_patterns", WEB, "tuple[re.Pattern[str], ...]", (), values.patterns,
           "Regular expressions searched in the path: a match is not tracked."),
    Option("exclude", WEB, "Callable[[Any], bool] | None", None, values.plain_callable,
           "Sees the framework's request and returns True to skip it."),
    Option("include_paths", WEB, "tuple[str, ...]", (), values.paths,
           "Paths to track although a default exclusion matches them (prefix match)."),
    Option("exclude_methods", WEB, "frozenset[str]", frozenset({"OPTIONS", "HEAD"}),
           values.methods, "HTTP methods never tracked."),
    Option("track_bots", WEB, "bool", False, values.parse_bool,
           "Track requests from crawlers and bots too."),
    Option("handle_sigterm", WEB, "bool", True, values.parse_bool,
           "Where SIGTERM is left at its default, deliver queued signals first, then let "
           "SIGTERM end the process exactly as before (`td_web._shutdown`)."),
    Option("client_user", WEB, _REQUEST_CALLABLE, None, values.plain_callable,
           "Overrides the adapter's user lookup: called with the framework's request, returns "
           "the user identifier (hashed before sending) or None for anonymous."),
    Option("sample_rate", WEB, "float", 1.0, values.sample_rate,
           "The share of *sessions* tracked, 0.0 to 1.0."),
    Option("sampler", WEB, _REQUEST_CALLABLE, None, values.sync_callable,
           "A callable given the `td_web.RequestView`, returns the rate for the request's "
           "session."),
    Option("consent_required", WEB, "bool", False, values.parse_bool,
           "Send nothing and set no cookie until the app records consent (`opt_in`)."),
    Option("consent_cookie_name", WEB, "str", "td_consent", values.cookie_name,
           "The first-party cookie that remembers opt-out (`no`) or consent (`yes`)."),
    Option("respect_dnt", WEB, "bool", False, values.parse_bool,
           "Send nothing for requests carrying `DNT: 1`."),
    Option("exclude_status", WEB, "frozenset[int]", frozenset(), values.statuses,
           'Statuses whose request signal is not sent: `{404}`, `["4xx", 503]`.'),
    Option("exclude_routes", WEB, "frozenset[str]", frozenset(), _routes,
           'Route templates whose request signal is not sent: `["/items/{item_id}"]`.'),
    Option("trusted_proxies", WEB, "TrustedProxies | None", None, _trusted_proxies,
           "The proxies in front of the app (a hop count, or addresses and CIDRs) whose "
           "`X-Forwarded-*` headers are believed."),
    Option("redact_paths", WEB, "bool", True, values.parse_bool,
           "Replace path segments that look like e-mail addresses, UUIDs, card numbers or "
           "tokens by a placeholder; matrix parameters are dropped whatever this says."),
    Option("redact_patterns", WEB, "tuple[re.Pattern[str], ...]", (), values.patterns,
           "More regular expressions: a path segment in which one matches becomes "
           "`{redacted}`."),
    Option("device_keys", WEB, "bool", True, values.parse_bool,
           "Browser, system and device keys parsed from the User-Agent on the sender thread."),
    Option("country_headers", WEB, "tuple[str, ...]", (), values.country_headers,
           "Edge headers holding the client's country, trusted in this order "
           "(`CF-IPCountry`, `CloudFront-Viewer-Country`, `X-Vercel-IP-Country` or any name): "
           "only those the app really sits behind, since a client can send any of them "
           "itself."),
    Option("geoip_database", WEB, "str | None", None, values.geoip_database,
           "A MaxMind-format (.mmdb) country or city database, asked after the headers."),
    Option("send_click_ids", WEB, "bool", False, values.parse_bool,
           "Send the per-click ad identifiers `GCLID` and `MSCLKID` from the query string."),
    Option("visitor_cookie", WEB, "bool", False, values.parse_bool,
           "A signed first-party cookie with visit counts (no identifier) for the new and "
           "returning visitor keys; never set in cookieless mode or under `respect_gpc`."),
    Option("visitor_cookie_name", WEB, "str", "td_visitor", values.cookie_name,
           "The visitor cookie's name."),
    Option("visitor_cookie_max_age", WEB, "int", 400 * 86400, values.seconds,
           "The visitor cookie's lifetime, in seconds."),
)  # fmt: skip

#: Every option by name, in the table's order.
OPTIONS: dict[str, Option] = {option.name: option for option in _TABLE}
CLIENT_OPTION_NAMES = frozenset(name for name, o in OPTIONS.items() if o.layer == CLIENT)
WEB_OPTION_NAMES = frozenset(name for name, o in OPTIONS.items() if o.layer == WEB)
#: What an adapter accepts: every option, and ``client``.
ADAPTER_NAMES = frozenset(OPTIONS) | {CLIENT_HAND_OFF}


def default(name: str) -> Any:
    """An option's default, for its dataclass field."""
    return OPTIONS[name].default


def resolve(
    option: Option,
    options: Mapping[str, Any],
    fallbacks: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, Any]:
    """(the setting's name, its value) as the client sees it: given (None means "not given"),
    else the option's environment variable, else the adapter's fallback; the value is None
    when none says. The one place that reads the environment for an option."""
    value = options.get(option.name)
    if value is not None:
        return option.name, value
    env = os.environ if environ is None else environ
    if option.env is not None and option.env in env:
        return option.env, env[option.env]
    return option.name, (fallbacks or {}).get(option.name)


def parse_options(
    layer: Layer,
    options: Mapping[str, Any],
    fallbacks: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[ConfigurationError]]:
    """Each option of one layer resolved (given, environment, fallback) and parsed by its
    row: (the parsed values, one error for each bad setting). What nothing sets is left out,
    so its field keeps the default."""
    parsed: dict[str, Any] = {}
    problems: list[ConfigurationError] = []
    for option, setting, value in set_options(layer, options, fallbacks, environ):
        try:
            parsed[option.name] = option.parse(value, setting)
        except ConfigurationError as exc:
            problems.append(exc)
    return parsed, problems


def set_options(
    layer: Layer,
    options: Mapping[str, Any],
    fallbacks: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[tuple[Option, str, Any]]:
    """Each option of one layer that something sets (given, environment, fallback): its row,
    the setting's name and the value, not yet parsed."""
    for name, option in OPTIONS.items():
        if option.layer != layer:
            continue
        setting, value = resolve(option, options, fallbacks, environ)
        if value is None and not (option.none_is_a_value and name in options):
            continue
        yield option, setting, value


def unknown_names_error(
    noun: str, source: str, unknown: Iterable[str], known: Collection[str]
) -> ConfigurationError:
    """One message for a name that is no option, wherever it was spelled: it names each
    unknown name, suggests the closest known one, and lists the known ones."""
    unknown = list(unknown)
    message = f"unknown td_web {noun}(s) in {source}: {', '.join(unknown)}."
    for name in unknown:
        suggestion = _closest(name, known)
        if suggestion:
            message += f" {name}: did you mean {suggestion}?"
    return ConfigurationError(message + f" Known: {', '.join(sorted(known))}")


def _closest(name: str, known: Collection[str]) -> str | None:
    by_lower = {candidate.lower(): candidate for candidate in known}
    if name.lower() in by_lower:  # the right name, wrong case (Django keys are upper-case)
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.8)
    return by_lower[close[0]] if close else None
