"""``flask telemetrydeck check|send``: ``td-web check``/``send`` with the app's own td_web
configuration (config keys, ``init_app`` keyword arguments, environment, debug flag: exactly
what its client was built from). ``init_app`` registers the group on the app's CLI.

Exit codes for deploy scripts: 0 all good; 1 a check failed or the signal was not delivered;
2 the configuration cannot build a client.
"""

from __future__ import annotations

import argparse
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from .. import _commands
from .state import state_for

FRONT = _commands.Front(
    app_id_hint="set TELEMETRYDECK_APP_ID in the app's config or the environment",
    salt_hint="set TELEMETRYDECK_SALT in the app's config or the environment",
)

telemetrydeck = AppGroup(
    "telemetrydeck", help="Check td_web's TelemetryDeck configuration, or send one signal."
)


def _app_options() -> dict[str, object]:
    return {"client": state_for(current_app).client}


@telemetrydeck.command("check")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="HTTP timeout (s)")
def check(timeout: float) -> None:
    """Validate the configuration and probe the endpoint."""
    code = _commands.check(_app_options(), timeout=timeout, out=sys.stdout, front=FRONT)
    click.get_current_context().exit(code)


def _payload_entry(
    context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    try:
        return [_commands.payload_entry(value) for value in values]
    except argparse.ArgumentTypeError as exc:
        raise click.BadParameter(str(exc)) from exc


@telemetrydeck.command("send")
@click.argument("signal_type", metavar="TYPE")
@click.argument("payload", nargs=-1, metavar="[KEY=VALUE]...", callback=_payload_entry)
@click.option("--user", help="User identifier (hashed with the salt before sending).")
@click.option("--session", help="Session id to send as is.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="HTTP timeout (s)")
def send(
    signal_type: str,
    payload: list[tuple[str, str]],
    user: str | None,
    session: str | None,
    timeout: float,
) -> None:
    """Send one signal of TYPE and report whether it was delivered."""
    code = _commands.send(
        _app_options(),
        signal_type,
        dict(payload),
        user=user,
        session=session,
        timeout=timeout,
        out=sys.stdout,
        err=sys.stderr,
        command="flask telemetrydeck send",
    )
    click.get_current_context().exit(code)
