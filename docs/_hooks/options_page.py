"""MkDocs hook: the options page's tables, generated from the option table
(``td_web._options``): each option's name, its Django and Flask spellings, environment
variable, type, default and meaning. A new option appears in the docs as soon as it has a
row; nothing is copied by hand.

The page holds the marker ``<!-- options-table -->`` where the tables go.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- options-table -->"


def _default(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, (tuple, list, set, frozenset)):
        return "`" + ", ".join(sorted(map(str, value))) + "`" if value else "empty"
    return f"`{value!r}`"


def _rows(layer: str) -> list[str]:
    from td_web._options import OPTIONS

    rows = []
    for name, option in OPTIONS.items():
        if option.layer != layer:
            continue
        variable = f"`{option.env}`" if option.env else ""
        kind = option.type.replace("|", "\\|")
        meaning = option.doc.replace("|", "\\|")
        rows.append(
            f"| `{name}` | `{option.django_key}` | `{option.flask_key}` | {variable} "
            f"| `{kind}` | {_default(option.default)} | {meaning} |"
        )
    return rows


def options_tables() -> str:
    from td_web._options import CLIENT, WEB

    header = [
        "| option (ASGI keyword) | Django `TELEMETRYDECK` key | Flask config key "
        "| environment | type | default | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    client = "\n".join([*header, *_rows(CLIENT)])
    web = "\n".join([*header, *_rows(WEB)])
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
