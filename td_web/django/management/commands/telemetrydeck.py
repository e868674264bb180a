"""``python manage.py telemetrydeck check|send``: ``td-web check``/``send`` reading the project's
own ``settings.TELEMETRYDECK`` (then the ``TELEMETRYDECK_*`` environment variables, then
``DEBUG`` as the test mode, as the middleware does). Needs ``"td_web.django"`` in
``INSTALLED_APPS``.

Exit codes for deploy scripts: 0 all good; 1 a check failed or the signal was not delivered;
2 the settings cannot build a client (``manage.py check`` names the problem).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .... import _commands
from ...._config import ConfigurationError
from ... import conf

FRONT = _commands.Front(
    app_id_hint="set TELEMETRYDECK['APP_ID'] in settings.py or TELEMETRYDECK_APP_ID",
    salt_hint="set TELEMETRYDECK['SALT'] in settings.py or TELEMETRYDECK_SALT",
)


class Command(BaseCommand):
    help = "Check td_web's TelemetryDeck configuration, or send one signal with it."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{check,send}")
        actions.required = True
        check = actions.add_parser("check", help="validate the settings; probe the endpoint")
        _commands.add_check_arguments(check)
        send = actions.add_parser("send", help="send one signal and report whether it arrived")
        _commands.add_send_arguments(send)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            given = conf.options()
        except ConfigurationError as exc:
            raise CommandError(str(exc), returncode=_commands.EXIT_USAGE) from exc
        if options["action"] == "check":
            code = _commands.check(
                given,
                fallbacks=conf.fallbacks(),
                timeout=options["timeout"],
                out=self.stdout,
                front=FRONT,
            )
        else:
            code = _commands.send(
                given,
                options["type"],
                dict(options["payload"]),
                fallbacks=conf.fallbacks(),
                user=options["user"],
                session=options["session"],
                timeout=options["timeout"],
                out=self.stdout,
                err=self.stderr,
                command="manage.py telemetrydeck send",
            )
        if code != _commands.EXIT_OK:
            raise CommandError(f"telemetrydeck {options['action']} failed", returncode=code)
