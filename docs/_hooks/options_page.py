"""MkDocs hook: the options page's table, generated from the one source of truth, the
``ClientConfig`` and ``WebSettings`` dataclasses (name, type, default, and the ``#:`` comment
above each field) and the adapters' spelling of each name. A new option appears in the docs
as soon as it is a field; nothing is copied by hand.

The page holds the marker ``<!-- options-table -->`` where the tables go.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

MARKER = "<!-- options-table -->"
_FIELD = re.compile(r"^\s+(\w+)\s*:")
_ROLE = re.compile(r":\w+:`~?([^`]+)`")  # Sphinx roles in the comments, as plain code


def _comments(cls: type) -> dict[str, str]:
    """Each field's ``#:`` comment lines, joined."""
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = _FIELD.match(line)
        if match and pending:
            found[match.group(1)] = " ".join(pending)
        pending = [] if not stripped.startswith("#") else pending
    return found


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list, set, frozenset)):
        return "`" + ", ".join(sorted(map(str, value))) + "`" if value else "empty"
    return f"`{value!r}`"


def _rows(cls: type, environment: dict[str, str]) -> list[str]:
    comments = _comments(cls)
    rows = []
    for field in dataclasses.fields(cls):
        name = field.name
        variable = f"`{environment[name]}`" if name in environment else ""
        meaning = _ROLE.sub(r"`\1`", comments.get(name, "")).replace("|", "\\|")
        kind = str(field.type).replace("|", "\\|")
        rows.append(
            f"| `{name}` | `{name.upper()}` | `TELEMETRYDECK_{name.upper()}` | {variable} "
            f"| `{kind}` | {_default(field)} | {meaning} |"
        )
    return rows


def options_tables() -> str:
    from td_web._config import ENVIRONMENT_VARIABLES, ClientConfig
    from td_web._web.settings import WebSettings

    header = [
        "| option (ASGI keyword) | Django `TELEMETRYDECK` key | Flask config key "
        "| environment | type | default | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    client = "\n".join([*header, *_rows(ClientConfig, ENVIRONMENT_VARIABLES)])
    web = "\n".join([*header, *_rows(WebSettings, ENVIRONMENT_VARIABLES)])
    return (
        "## The client's options\n\n"
        "Also the keyword arguments of `td_web.TelemetryDeck(...)`.\n\n"
        f"{client}\n\n"
        "## The adapters' options\n\n"
        "What each request sends and how: taken by the Django middleware, the Flask extension "
        "and the ASGI middleware alike.\n\n"
        f"{web}\n"
    )


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, options_tables())
