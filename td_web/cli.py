"""The ``td-web`` command.

    td-web collect [--host H] [--port P] [--db FILE]    a local ingest server with a live page
    td-web tail [--url URL | --db FILE] [--type T]      follow arriving signals in the terminal
    td-web send TYPE [KEY=VALUE ...] [options]          send one signal, report the outcome
    td-web check [options]                              validate a configuration
    td-web demo [...]                                   the demo (td_web.demo, when installed)

``send`` and ``check`` read the same ``TELEMETRYDECK_*`` environment variables as the client;
an option given on the command line wins.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import TextIO

from . import _commands
from ._option_values import DEFAULT_ENDPOINT
from ._transport import http_library
from ._version import __version__

EXIT_OK = _commands.EXIT_OK
EXIT_FAILED = _commands.EXIT_FAILED
EXIT_USAGE = _commands.EXIT_USAGE

# -- argument parsing ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="td-web",
        description="td_web tools: a local TelemetryDeck collector and helpers around it.",
    )
    parser.add_argument("--version", action="version", version=f"td_web {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    collect = commands.add_parser(
        "collect",
        help="run a local ingest server with a live page",
        description="Run a local Ingest API v2 server that validates every signal, stores it "
        "in SQLite and shows it live at / . Stop it with Ctrl-C.",
    )
    collect.add_argument("--host", default=None, help="address to listen on (127.0.0.1)")
    collect.add_argument("--port", type=int, default=None, help="port; 0 picks a free one (8787)")
    collect.add_argument(
        "--db",
        metavar="FILE",
        default=None,
        help="SQLite file, kept across restarts (./td_web_collector.db)",
    )
    collect.add_argument(
        "--max-body-bytes", type=int, default=None, help="larger bodies get 413 (5 MB)"
    )
    collect.add_argument("-q", "--quiet", action="store_true", help="do not log rejected requests")

    tail = commands.add_parser(
        "tail",
        help="follow signals arriving at a collector",
        description="Print the last signals a collector received, then each new one.",
    )
    source = tail.add_mutually_exclusive_group()
    source.add_argument(
        "--url", metavar="URL", help="a running collector (default http://127.0.0.1:8787)"
    )
    source.add_argument("--db", metavar="FILE", help="read a collector's SQLite file directly")
    tail.add_argument("--type", help="only signals of this type")
    tail.add_argument(
        "-n", "--lines", type=int, default=10, help="how many recent signals to show first (10)"
    )
    tail.add_argument("--once", action="store_true", help="show the recent signals and exit")
    tail.add_argument("--violations", action="store_true", help="show rejected signals too")
    tail.add_argument("--interval", type=float, default=0.5, help="seconds between polls (0.5)")
    tail.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="ANSI colours"
    )

    send = commands.add_parser(
        "send",
        help="send one signal and report whether it was delivered",
        description="Send one signal through the td_web client (synchronously) and print the "
        "outcome. Exits non-zero when it was not delivered.",
    )
    _commands.add_send_arguments(send)
    _add_client_options(send)
    send.add_argument(
        "--test-mode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mark the signal as a test signal (TELEMETRYDECK_TEST_MODE)",
    )

    check = commands.add_parser(
        "check",
        help="validate a configuration (app id, endpoint, namespace)",
        description="Check the app id's format, that the endpoint answers, and the namespace's "
        "format. Exits non-zero when a check fails.",
    )
    _add_client_options(check)
    _commands.add_check_arguments(check)

    # Listed for --help only: main() hands `demo` and everything after it to td_web.demo.
    commands.add_parser("demo", help="run the demo (a collector, an example site, traffic)")
    return parser


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-id", help="TelemetryDeck app id (TELEMETRYDECK_APP_ID)")
    parser.add_argument(
        "--endpoint", help=f"ingest base URL (TELEMETRYDECK_ENDPOINT, default {DEFAULT_ENDPOINT})"
    )
    parser.add_argument("--namespace", help="namespace, e.g. com.example (TELEMETRYDECK_NAMESPACE)")
    parser.add_argument("--salt", help="salt for user hashes (TELEMETRYDECK_SALT)")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["demo"]:
        return run_demo(arguments[1:])
    options = build_parser().parse_args(arguments)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "collect": run_collect,
        "tail": run_tail,
        "send": run_send,
        "check": run_check,
    }
    quiet = getattr(options, "quiet", False)
    with _library_logs_on_stderr(logging.ERROR if quiet else logging.WARNING):
        try:
            return commands[options.command](options)
        except KeyboardInterrupt:
            return EXIT_OK


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _library_logs_on_stderr(level: int) -> Iterator[None]:
    """td_web's warnings (rejected requests, client problems) are part of the CLI's output.
    Undone afterwards, so that calling ``main()`` in-process leaves logging as it was."""
    library = logging.getLogger("td_web")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = library.level
    library.setLevel(level)
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(previous_level)


# -- demo: owned by td_web.demo --------------------------------------------------------------


def run_demo(arguments: list[str]) -> int:
    """Hand over to ``td_web.demo.main(arguments) -> int`` when that module exists."""
    if importlib.util.find_spec("td_web.demo") is None:
        print("td-web demo: the demo is not part of this td_web build", file=sys.stderr)
        return EXIT_USAGE
    demo = importlib.import_module("td_web.demo")
    return int(demo.main(arguments) or 0)


# -- collect ---------------------------------------------------------------------------------


def run_collect(options: argparse.Namespace) -> int:
    from .collector import (
        DEFAULT_DB_PATH,
        DEFAULT_HOST,
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_PORT,
        Collector,
        StoreError,
    )

    db_path = options.db or DEFAULT_DB_PATH
    try:
        collector = Collector(
            db_path,
            host=options.host or DEFAULT_HOST,
            port=DEFAULT_PORT if options.port is None else options.port,
            max_body_bytes=options.max_body_bytes or DEFAULT_MAX_BODY_BYTES,
        )
    except (OSError, StoreError) as exc:
        print(f"td-web collect: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"td_web collector listening on {collector.url}", flush=True)
    print(f"  live page   {collector.url}/", flush=True)
    print(f"  endpoint    TELEMETRYDECK_ENDPOINT={collector.url}", flush=True)
    print(f"  database    {os.path.abspath(db_path)}", flush=True)
    print("  stop with Ctrl-C", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        collector.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("td_web collector stopped", flush=True)
    return EXIT_OK


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM stops the collector as cleanly as Ctrl-C: the database is closed properly.
    raise KeyboardInterrupt


# -- tail ------------------------------------------------------------------------------------


def run_tail(options: argparse.Namespace) -> int:
    from .collector import DEFAULT_HOST, DEFAULT_PORT, StoreError
    from .collector.tail import DatabaseSource, Follower, HttpSource, Palette, colors_wanted

    source: DatabaseSource | HttpSource
    if options.db:
        try:
            source = DatabaseSource(options.db)
        except StoreError as exc:
            print(f"td-web tail: {exc}", file=sys.stderr)
            return EXIT_FAILED
        where = options.db
    else:
        source = HttpSource(options.url or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")
        where = source.url
    out = sys.stdout
    follower = Follower(
        source,
        _line_writer(out),
        Palette(colors_wanted(out, options.color)),
        signal_type=options.type,
        include_violations=options.violations,
    )
    try:
        follower.show_history(max(options.lines, 0))
        if not options.once:
            follower.follow(max(options.interval, 0.05))
    except http_library().HTTPError as exc:
        print(f"td-web tail: cannot read {where}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        source.close()
    return EXIT_OK


def _line_writer(stream: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


# -- send and check: shared with manage.py and flask (td_web._commands) -----------------------


#: The client options both commands take from the command line.
CLIENT_FLAGS = ("app_id", "salt", "endpoint", "namespace")


def run_send(options: argparse.Namespace) -> int:
    given = {name: getattr(options, name) for name in (*CLIENT_FLAGS, "test_mode")}
    return _commands.send(
        given,
        options.type,
        dict(options.payload),
        user=options.user,
        session=options.session,
        timeout=options.timeout,
        out=sys.stdout,
        err=sys.stderr,
    )


def run_check(options: argparse.Namespace) -> int:
    given = {name: getattr(options, name) for name in CLIENT_FLAGS}
    return _commands.check(given, timeout=options.timeout, out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
