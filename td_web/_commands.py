"""``check`` and ``send``, once for every front end: ``td-web check|send``, ``python manage.py
telemetrydeck check|send`` and ``flask telemetrydeck check|send``.

A front end hands over the options it has (command-line flags, ``settings.TELEMETRYDECK``, the
Flask config; None means "not given") and its fallbacks (Django's ``DEBUG``, Flask's debug
flag); what neither gives comes from the ``TELEMETRYDECK_*`` environment variables, in the
client's own order. The exit codes are for deploy scripts: :data:`EXIT_OK` (0) all good,
:data:`EXIT_FAILED` (1) a check failed or the signal was not delivered, :data:`EXIT_USAGE` (2)
the configuration cannot build a client at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._config import OPTION_NAMES, ClientConfig, ConfigurationError
from ._option_values import DEFAULT_ENDPOINT, app_id_problem
from ._options import CLIENT, NO_SALT, OPTIONS, WEB, set_options
from ._options import resolve as resolve_option
from ._transport import http_library

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: What ``check`` looks at.
CHECKED_OPTIONS = ("app_id", "endpoint", "namespace", "salt", "test_mode", "enabled")

#: What ``send`` takes from an existing client's configuration.
CLIENT_OPTIONS = ("app_id", "salt", "endpoint", "namespace", "test_mode", "enabled", "app_version")

Result = tuple[str, str, str]


class Output(Protocol):
    """Where a command writes: a text stream, or Django's ``OutputWrapper``."""

    def write(self, text: str, /) -> Any: ...

    def isatty(self) -> bool: ...


def _say(out: Output, line: str) -> None:
    out.write(line + "\n")


@dataclass(frozen=True)
class Front:
    """How a front end names its settings in messages."""

    #: Where an app id is set, e.g. "pass --app-id or set TELEMETRYDECK_APP_ID".
    app_id_hint: str = "pass --app-id or set TELEMETRYDECK_APP_ID"
    #: Where the salt is set.
    salt_hint: str = "set TELEMETRYDECK_SALT"


def resolve(options: Mapping[str, Any], fallbacks: Mapping[str, Any] | None, name: str) -> Any:
    """One option as the client would see it: given, else the environment, else the
    fallback (the option table's order). An existing client given as ``client`` answers from
    its configuration."""
    client = options.get("client")
    if client is not None:
        return getattr(client.config, name)
    return resolve_option(OPTIONS[name], options, fallbacks)[1]


def client_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a bare client takes (an adapter's own options, such as ``exclude_paths``,
    mean nothing to ``send``)."""
    client = options.get("client")
    if client is not None:
        return {name: getattr(client.config, name) for name in CLIENT_OPTIONS}
    return {name: value for name, value in options.items() if name in OPTION_NAMES}


# -- check -----------------------------------------------------------------------------------


def check(
    options: Mapping[str, Any],
    *,
    fallbacks: Mapping[str, Any] | None = None,
    timeout: float,
    out: Output,
    front: Front = Front(),
) -> int:
    """Print one line per check (``ok``, ``warn`` or ``FAIL``) and a verdict."""
    from .collector.tail import GREEN, RED, YELLOW, Palette, colors_wanted

    values = {name: resolve(options, fallbacks, name) for name in CHECKED_OPTIONS}
    results = ConfigurationCheck(values, timeout=timeout, front=front).run()
    if options.get("client") is None:  # a client's configuration was checked when it was built
        results += _other_settings(options, fallbacks)
    paint = Palette(colors_wanted(out))  # type: ignore[arg-type]
    marks = {"ok": paint("ok  ", GREEN), "warn": paint("warn", YELLOW), "fail": paint("FAIL", RED)}
    for outcome, name, detail in results:
        _say(out, f"{marks[outcome]}  {name:<10} {detail}")
    failed = sum(1 for outcome, _, _ in results if outcome == "fail")
    _say(out, f"{failed} check(s) failed" if failed else "configuration looks good")
    return EXIT_FAILED if failed else EXIT_OK


def _other_settings(
    options: Mapping[str, Any], fallbacks: Mapping[str, Any] | None
) -> list[Result]:
    """Every other option that is set (given or in the environment), parsed by its row of the
    option table: one failure naming the setting, the value and why for each bad one."""
    checked = 0
    failures: list[Result] = []
    for layer in (CLIENT, WEB):
        for option, setting, value in set_options(layer, options, fallbacks):
            if option.name in CHECKED_OPTIONS:
                continue
            checked += 1
            try:
                option.parse(value, setting)
            except ConfigurationError as exc:
                failures.append(("fail", option.name, str(exc)))
    if failures or not checked:
        return failures
    return [("ok", "settings", f"{checked} other setting(s) valid")]


class ConfigurationCheck:
    """The checks; each gives (outcome, name, detail), the outcome ``ok``, ``warn`` (worth
    knowing, not a failure) or ``fail``."""

    def __init__(self, values: Mapping[str, Any], *, timeout: float, front: Front) -> None:
        self.app_id: str | None = _text(values.get("app_id"))
        self.endpoint: str = _text(values.get("endpoint")) or DEFAULT_ENDPOINT
        self.namespace: str | None = _text(values.get("namespace"))
        self.salt: str | None = _text(values.get("salt"))
        self.test_mode: object = values.get("test_mode")
        self.enabled: object = values.get("enabled")
        self.timeout = timeout
        self.front = front

    def run(self) -> list[Result]:
        results = [
            self.check_app_id(),
            self.check_namespace(),
            *self.check_endpoint(),
            self.check_salt(),
            self.check_test_mode(),
        ]
        if self.enabled is not None:
            results.append(self.check_enabled())
        return results

    def check_app_id(self) -> Result:
        if not self.app_id:
            return "fail", "app id", f"missing: {self.front.app_id_hint}"
        problem = app_id_problem(self.app_id)
        if problem:
            return "fail", "app id", problem
        return "ok", "app id", self.app_id

    def check_namespace(self) -> Result:
        if not self.namespace:
            return "ok", "namespace", "none (signals go to /v2/)"
        problem = _config_problem(namespace=self.namespace)
        if problem:
            return "fail", "namespace", problem
        return "ok", "namespace", self.namespace

    def check_endpoint(self) -> list[Result]:
        problem = _config_problem(endpoint=self.endpoint)
        if problem:
            return [("fail", "endpoint", problem)]
        namespace_ok = self.namespace and not _config_problem(namespace=self.namespace)
        ingest_url = ClientConfig(
            endpoint=OPTIONS["endpoint"].parse(self.endpoint, "endpoint"),
            namespace=OPTIONS["namespace"].parse(self.namespace, "namespace")
            if namespace_ok
            else None,
        ).ingest_url
        # Any answer proves the server is there; a GET sends no signal (ingest wants POST).
        # The sender's HTTP library (httpx2 or httpx), imported only when a check runs.
        library = http_library(None, None)
        try:
            response = library.get(ingest_url, timeout=self.timeout)
        except library.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc or 'timed out'}"
            return [("fail", "endpoint", f"{ingest_url} is not reachable: {reason}")]
        # 501: the server is there and does not implement GET, which is no trouble.
        if response.status_code >= 500 and response.status_code != 501:
            status = response.status_code
            return [
                ("fail", "endpoint", f"{ingest_url} answered HTTP {status}: the server has trouble")
            ]
        return [("ok", "endpoint", f"{ingest_url} answers (HTTP {response.status_code} to GET)")]

    def check_salt(self) -> Result:
        if not self.salt:
            return (
                "warn",
                "salt",
                f"none: {NO_SALT}; {self.front.salt_hint}",
            )
        return "ok", "salt", f"set ({len(self.salt)} characters)"

    def check_test_mode(self) -> Result:
        if self.test_mode is None:
            return "ok", "test mode", f"off ({_setting('test_mode')} not set)"
        try:
            enabled = OPTIONS["test_mode"].parse(self.test_mode, _setting("test_mode"))
        except ConfigurationError as exc:
            return "fail", "test mode", str(exc)
        return "ok", "test mode", "on" if enabled else "off"

    def check_enabled(self) -> Result:
        try:
            enabled = OPTIONS["enabled"].parse(self.enabled, "enabled")
        except ConfigurationError as exc:
            return "fail", "enabled", str(exc)
        if enabled:
            return "ok", "enabled", "yes"
        return "warn", "enabled", "no: this configuration sends nothing (enabled is off)"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _setting(name: str) -> str:
    """How messages name an option: by its environment variable where it has one."""
    return OPTIONS[name].env or name


def _config_problem(**options: str) -> str | None:
    """The client's own verdict on one setting (its parser in the option table, as at
    start-up)."""
    try:
        for name, value in options.items():
            OPTIONS[name].parse(value, name)
    except ConfigurationError as exc:
        return str(exc)
    return None


# -- send ------------------------------------------------------------------------------------


def send(
    options: Mapping[str, Any],
    signal_type: str,
    payload: Mapping[str, str],
    *,
    fallbacks: Mapping[str, Any] | None = None,
    user: str | None = None,
    session: str | None = None,
    timeout: float,
    out: Output,
    err: Output,
    command: str = "td-web send",
) -> int:
    """Send one signal synchronously and say whether it was delivered."""
    from ._client import TelemetryDeck

    given = {**client_options(options), "sync": True, "timeout": timeout}
    try:
        client = TelemetryDeck(**given, _fallbacks=fallbacks)
    except ConfigurationError as exc:
        _say(err, f"{command}: {exc}")
        return EXIT_USAGE
    with client:
        client.signal(signal_type, dict(payload), client_user=user, session_id=session)
        stats = client.stats()
    url = client.config.ingest_url
    if stats.sent >= 1:
        _say(out, f"sent {signal_type!r} to {url}: delivered ({stats.sent} signal)")
        return EXIT_OK
    if not client.config.enabled:
        _say(err, f"not delivered: td_web is disabled by this configuration ({url})")
        return EXIT_FAILED
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.dropped.items()))
    _say(
        err,
        f"not delivered: {signal_type!r} to {url}"
        + (f"; dropped ({reasons})" if reasons else "")
        + (f"; last error: {stats.last_error}" if stats.last_error else ""),
    )
    return EXIT_FAILED


def payload_entry(text: str) -> tuple[str, str]:
    """One ``KEY=VALUE`` payload argument (an ``argparse`` type)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"payload entries are KEY=VALUE, got {text!r}")
    return key, value


def add_send_arguments(parser: argparse.ArgumentParser) -> None:
    """``send``'s own arguments, the same in every front end that parses with argparse."""
    parser.add_argument("type", metavar="TYPE", help="the signal type, e.g. Deploy.finished")
    parser.add_argument(
        "payload", metavar="KEY=VALUE", nargs="*", type=payload_entry, help="payload entries"
    )
    parser.add_argument("--user", help="user identifier (hashed with the salt before sending)")
    parser.add_argument("--session", help="session id to send as is")
    parser.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds (10)")


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=3.0, help="HTTP timeout in seconds (3)")
