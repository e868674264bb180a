"""docs/logging.md has a row for every message td_web logs at WARNING or above.

The messages are read from td_web's source with ``ast`` (the literal first message argument of
each logging call), so a new warning without a row fails here, naming it. A row matches when its
level is the call's level and its message column holds the message's beginning, where each
``%s``-style placeholder may stand for any short text (``N``, ``…``, ``opt_in``)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "logging.md"

#: How many literal characters (placeholders not counted) of a message a row must hold.
PREFIX_CHARS = 30
#: The levels td_web's own calls name, as the row's level column spells them.
METHOD_LEVELS = {
    "warning": "WARNING",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "CRITICAL",
}
CONSTANT_LEVELS = {"WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}
LOGGER_NAMES = {"logger", "throttled"}
#: printf-style conversions as the logging module expands them: %s, %r, %d, %.1f, %(name)s.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa]")
LOGGER_PREFIX = re.compile(r"^td_web(?:\.\w+)?: ")


@dataclass(frozen=True)
class Message:
    where: str
    level: str
    text: str


def literal(node: ast.expr) -> str | None:
    """The string a message argument spells, when the source spells it (implicit
    concatenation is one constant already; ``"a" + "b"`` is joined)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = literal(node.left), literal(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def level_and_message(call: ast.Call) -> tuple[str, ast.expr] | None:
    """(level, message argument) of a td_web logging call at WARNING or above, else None."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return None
    if func.value.id not in LOGGER_NAMES:
        return None
    args = call.args
    if func.attr == "log":
        if not args:
            return None
        level_node, args = args[0], args[1:]
        name = level_node.attr if isinstance(level_node, ast.Attribute) else None
        level = CONSTANT_LEVELS.get(name or "")
    else:
        level = METHOD_LEVELS.get(func.attr)
    if func.value.id == "throttled":
        args = args[1:]  # the throttle key comes before the message
    if level is None or not args:
        return None
    return level, args[0]


def logged_messages() -> list[Message]:
    found = []
    for path in sorted((ROOT / "td_web").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            hit = level_and_message(node)
            if hit is None:
                continue
            level, argument = hit
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            text = literal(argument)
            if text is None:
                if path.name == "_log.py":
                    continue  # ThrottledLog itself passes its caller's message on
                raise AssertionError(f"{where}: the message is not a string literal")
            found.append(Message(where, level, text))
    return found


def beginning_pattern(text: str) -> re.Pattern[str] | None:
    """A pattern for the first PREFIX_CHARS literal characters of a message, placeholders
    matching any short text; None when the message is only placeholders (it forwards text
    made elsewhere, documented by its own rows)."""
    body = LOGGER_PREFIX.sub("", text)
    parts = []
    literal_chars = 0
    position = 0
    for match in [*PLACEHOLDER.finditer(body), None]:
        end = match.start() if match else len(body)
        chunk = body[position:end][: PREFIX_CHARS - literal_chars]
        parts.append(re.escape(chunk))
        literal_chars += len(chunk)
        if match is None or literal_chars >= PREFIX_CHARS:
            break
        parts.append(r"[^|]{1,40}?")
        position = match.end()
    if not PLACEHOLDER.sub("", body).strip(" :;,.()"):
        return None
    return re.compile("".join(parts))


def documented_rows() -> list[tuple[str, str]]:
    """(level, message column) of each row of the doc's tables, backticks removed."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if (
            line.startswith("|")
            and len(cells) >= 2
            and cells[0] in {"WARNING", "ERROR", "CRITICAL"}
        ):
            rows.append((cells[0], " ".join(cells[1].replace("`", "").split())))
    return rows


def test_the_collector_finds_td_webs_messages() -> None:
    """A broken collector (finding nothing) would make the real test pass vacuously."""
    messages = logged_messages()
    texts = {message.text for message in messages}
    assert len(messages) > 80
    assert any(text.startswith("td_web: the send queue is full") for text in texts)
    assert any(m.level == "WARNING" and "retrying in" in m.text for m in messages)  # throttled.log
    assert any(m.level == "ERROR" and "recording the request failed" in m.text for m in messages)


def test_the_pattern_tolerates_placeholders() -> None:
    pattern = beginning_pattern("td_web: sending %d signals failed (%s); retrying in %.1fs")
    assert pattern is not None
    assert pattern.search("sending N signals failed (…); retrying in Ns")
    assert not pattern.search("sending signals failed")
    assert beginning_pattern("td_web: %s") is None


def test_every_warning_and_error_has_a_row_in_the_logging_doc() -> None:
    rows = documented_rows()
    missing = []
    for message in logged_messages():
        pattern = beginning_pattern(message.text)
        if pattern is None:
            continue
        if not any(level == message.level and pattern.search(text) for level, text in rows):
            missing.append(f"{message.where}: {message.level} {message.text!r}")
    assert not missing, "docs/logging.md has no row for:\n" + "\n".join(missing)
