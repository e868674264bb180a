"""Checking an ingest request against the Ingest API v2 as a strict server would.

The wire contract is TelemetryDeck's Ingest API v2 document; where it is loose (it says what a
signal *must* have, not what it must not), we hold signals to what td_web promises to send:

* the body is UTF-8 JSON: an array of one or more objects;
* each signal has string ``appID``, ``clientUser`` and ``type`` (non-empty), optionally a string
  ``sessionID``, a JSON boolean ``isTestMode``, a ``payload`` object and a top-level
  ``floatValue`` number (TelemetryDeck's current documentation; when the payload holds one too,
  both must be the same number), and nothing else;
* ``clientUser`` is a salted SHA-256 hash: 64 lowercase hex digits (the raw id never leaves the
  process);
* payload values are JSON primitives (string, number, boolean), never objects, arrays or null;
  reserved keys do not appear; ``floatValue`` is a JSON number; keys are non-empty; strings
  stay within the sanitizer's documented lengths.

A batch with any problem is rejected whole (HTTP 400 naming every problem with the index of
the signal it is in): a strict server surfaces an SDK bug at once rather than letting the
good half of a batch hide it. Every rule has a stable id (:data:`RULES`), used in responses,
in the database and on the live page.

Not checked, on purpose: duplicate keys inside one JSON object (the standard parser keeps the
last one; detecting them would halve parsing speed) and whether the app id is a UUID (the
client already warns about that, and tests use short made-up ids).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._option_values import NAMESPACE
from .._sanitize import (
    FLOAT_VALUE_KEY,
    MAX_KEY_LENGTH,
    MAX_TYPE_LENGTH,
    MAX_VALUE_LENGTH,
    RESERVED_KEYS,
)
from .json_array import STRICT_DECODER, split_array

#: Rule id -> what it means. Ids are stable: tests, the database and the page refer to them.
RULES: dict[str, str] = {
    "request.unknown_route": "POST to a path that is not /v2/ or /v2/namespace/{namespace}/",
    "namespace.invalid": "the namespace in the path is not reverse-DNS style (com.example)",
    "content_type": "Content-Type is not application/json (with charset utf-8, if any)",
    "body.length_required": "the request has no Content-Length (chunked bodies are refused)",
    "body.too_large": "the body is larger than the collector's limit",
    "body.not_utf8": "the body is not valid UTF-8",
    "body.not_json": "the body is not valid JSON (NaN and Infinity are not JSON)",
    "body.not_array": "the body is not a JSON array",
    "body.empty": "the body is an empty array; td_web never sends an empty batch",
    "signal.not_object": "an element of the array is not a JSON object",
    "signal.missing_field": "a signal lacks appID, clientUser or type",
    "signal.field_type": "appID, clientUser, type or sessionID is not a string",
    "signal.empty_field": "appID, clientUser or type is an empty string",
    "signal.unknown_field": "a top-level field td_web does not send",
    "signal.lone_surrogate": "a string holds an unpaired UTF-16 surrogate escape",
    "floatValue.type": "the top-level floatValue is not a JSON number",
    "floatValue.mismatch": "the top-level floatValue and payload.floatValue differ",
    "type.too_long": f"the signal type is longer than {MAX_TYPE_LENGTH} characters",
    "isTestMode.not_bool": "isTestMode is not a JSON boolean",
    "clientUser.not_hash": "clientUser is not 64 lowercase hex digits (a SHA-256 hash)",
    "payload.not_object": "payload is not a JSON object",
    "payload.nested_value": "a payload value is an object or an array",
    "payload.null_value": "a payload value is null",
    "payload.reserved_key": "a payload key is reserved for the ingest server",
    "payload.floatValue_type": "payload.floatValue is not a JSON number",
    "payload.number_range": "a payload number is too large for a double (1e400)",
    "payload.empty_key": "a payload key is the empty string",
    "payload.key_too_long": f"a payload key is longer than {MAX_KEY_LENGTH} characters",
    "payload.value_too_long": f"a payload string is longer than {MAX_VALUE_LENGTH} characters",
}

#: The HTTP status for a request-level rule; every other problem answers 400.
STATUS_FOR_RULE: dict[str, int] = {
    "request.unknown_route": 404,
    "content_type": 415,
    "body.length_required": 411,
    "body.too_large": 413,
}

REQUIRED_FIELDS = ("appID", "clientUser", "type")
OPTIONAL_FIELDS = ("sessionID", "isTestMode", "payload", FLOAT_VALUE_KEY)
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)

#: A batch this bad is not worth describing further; the rest is summarised as truncated.
MAX_PROBLEMS = 1000

_CLIENT_USER_HASH = re.compile(r"[0-9a-f]{64}")
# A \uD800-\uDFFF escape; pairs are fine, but only a slow check can tell, so this gates it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


@dataclass(frozen=True)
class Problem:
    """One broken rule. ``signal_index`` is None for problems with the request as a whole."""

    rule: str
    message: str
    signal_index: int | None = None
    field: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "signal": self.signal_index,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class Verdict:
    """What a request amounts to: the parsed signals (when the body parsed) and its problems."""

    signals: list[Any]
    problems: list[Problem]
    truncated: bool = False
    #: Each signal's JSON text as it appeared in the body.
    sources: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def status(self) -> int:
        if not self.problems:
            return 200
        return STATUS_FOR_RULE.get(self.problems[0].rule, 400)


def namespace_problem(namespace: str) -> Problem | None:
    if NAMESPACE.fullmatch(namespace):
        return None
    return Problem(
        "namespace.invalid",
        f"namespace {namespace!r} is not reverse-DNS style such as 'com.example'",
    )


def content_type_problem(content_type: str | None) -> Problem | None:
    """None for ``application/json`` with no charset or charset utf-8 (any case)."""
    if content_type is None:
        return Problem("content_type", "no Content-Type header; send application/json")
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        return Problem("content_type", f"Content-Type is {content_type!r}; send application/json")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return Problem("content_type", f"charset {value.strip()!r} is not utf-8")
    return None


def validate_body(body: bytes) -> Verdict:
    """Parse and check a request body (already known to be JSON by its Content-Type)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Verdict([], [Problem("body.not_utf8", f"the body is not valid UTF-8 ({exc})")])
    split = split_array(text)
    if split is None:
        # Not a well-formed array: the ordinary parser says what it is instead.
        try:
            document = STRICT_DECODER.decode(text)
        except ValueError as exc:  # JSONDecodeError, and the NaN/Infinity refusal
            return Verdict([], [Problem("body.not_json", f"the body is not valid JSON: {exc}")])
        if not isinstance(document, list):
            return Verdict(
                [],
                [
                    Problem(
                        "body.not_array",
                        f"the body is a JSON {_json_type(document)}; send an array of signals",
                    )
                ],
            )
        split = document, [_compact(element) for element in document]
    signals, sources = split
    if not signals:
        return Verdict([], [Problem("body.empty", "the body is an empty array")])
    problems = validate_signals(signals)
    if _SURROGATE_ESCAPE.search(body):
        problems.extend(_lone_surrogates(signals))
    truncated = len(problems) > MAX_PROBLEMS
    return Verdict(signals, problems[:MAX_PROBLEMS], truncated, sources)


def validate_signals(signals: Sequence[Any]) -> list[Problem]:
    """Every problem in a parsed batch, in signal order."""
    problems: list[Problem] = []
    for index, signal in enumerate(signals):
        if type(signal) is not dict:
            problems.append(
                Problem(
                    "signal.not_object",
                    f"signal {index} is a JSON {_json_type(signal)}, not an object",
                    index,
                )
            )
            continue
        _check_signal(signal, index, problems)
        if len(problems) > MAX_PROBLEMS:
            break
    return problems


def _check_signal(signal: dict[str, Any], index: int, problems: list[Problem]) -> None:
    if not signal.keys() <= KNOWN_FIELDS:
        for name in signal.keys() - KNOWN_FIELDS:
            problems.append(
                Problem(
                    "signal.unknown_field",
                    f"unknown top-level field {name!r}; td_web sends only "
                    f"{', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}",
                    index,
                    name,
                )
            )
    for name in REQUIRED_FIELDS:
        if name not in signal:
            problems.append(
                Problem("signal.missing_field", f"required field {name!r} is missing", index, name)
            )
            continue
        value = signal[name]
        if type(value) is not str:
            problems.append(_field_type(name, value, index))
        elif not value:
            problems.append(
                Problem("signal.empty_field", f"{name!r} is an empty string", index, name)
            )
    client_user = signal.get("clientUser")
    if type(client_user) is str and client_user and not _CLIENT_USER_HASH.fullmatch(client_user):
        problems.append(
            Problem(
                "clientUser.not_hash",
                f"clientUser {client_user[:20]!r} is not a SHA-256 hash (64 lowercase hex "
                "digits); hash the user id with the salt before sending it",
                index,
                "clientUser",
            )
        )
    signal_type = signal.get("type")
    if type(signal_type) is str and len(signal_type) > MAX_TYPE_LENGTH:
        problems.append(
            Problem(
                "type.too_long",
                f"type is {len(signal_type)} characters; at most {MAX_TYPE_LENGTH}",
                index,
                "type",
            )
        )
    if "sessionID" in signal and type(signal["sessionID"]) is not str:
        problems.append(_field_type("sessionID", signal["sessionID"], index))
    if "isTestMode" in signal and type(signal["isTestMode"]) is not bool:
        problems.append(
            Problem(
                "isTestMode.not_bool",
                f"isTestMode must be true or false, got a JSON "
                f"{_json_type(signal['isTestMode'])} ({_preview(signal['isTestMode'])})",
                index,
                "isTestMode",
            )
        )
    if FLOAT_VALUE_KEY in signal:
        _check_top_level_float(signal, index, problems)
    if "payload" in signal:
        payload = signal["payload"]
        if type(payload) is dict:
            _check_payload(payload, index, problems)
        else:
            problems.append(
                Problem(
                    "payload.not_object",
                    f"payload must be a JSON object, got a JSON {_json_type(payload)}",
                    index,
                    "payload",
                )
            )


def _check_top_level_float(signal: dict[str, Any], index: int, problems: list[Problem]) -> None:
    value = signal[FLOAT_VALUE_KEY]
    if type(value) not in (int, float):
        problems.append(
            Problem(
                "floatValue.type",
                f"the top-level floatValue must be a JSON number, got a JSON {_json_type(value)} "
                f"({_preview(value)})",
                index,
                FLOAT_VALUE_KEY,
            )
        )
        return
    payload = signal.get("payload")
    inside = payload.get(FLOAT_VALUE_KEY) if type(payload) is dict else None
    if type(inside) in (int, float) and inside != value:
        problems.append(
            Problem(
                "floatValue.mismatch",
                f"the top-level floatValue {value!r} and payload.floatValue {inside!r} differ; "
                "send the same number in both places (or only one of them)",
                index,
                FLOAT_VALUE_KEY,
            )
        )


def _check_payload(payload: dict[str, Any], index: int, problems: list[Problem]) -> None:
    for key, value in payload.items():
        # The common case, a short string under an ordinary key, is settled here cheaply.
        if (
            type(value) is str
            and len(value) <= MAX_VALUE_LENGTH
            and 0 < len(key) <= MAX_KEY_LENGTH
            and key not in RESERVED_KEYS
            and key != FLOAT_VALUE_KEY
        ):
            continue
        _check_payload_entry(key, value, index, problems)


def _check_payload_entry(key: str, value: Any, index: int, problems: list[Problem]) -> None:
    field = f"payload.{key}"
    value_type = type(value)
    if key == FLOAT_VALUE_KEY:
        if value_type is not int and value_type is not float:
            problems.append(
                Problem(
                    "payload.floatValue_type",
                    f"floatValue must be a JSON number, got a JSON {_json_type(value)} "
                    f"({_preview(value)})",
                    index,
                    field,
                )
            )
        elif value_type is float and not math.isfinite(value):
            problems.append(_out_of_range(key, index, field))
    elif value_type is str:
        if len(value) > MAX_VALUE_LENGTH:
            problems.append(
                Problem(
                    "payload.value_too_long",
                    f"the value of {key!r} is {len(value)} characters; at most {MAX_VALUE_LENGTH}",
                    index,
                    field,
                )
            )
    elif value_type is dict or value_type is list:
        problems.append(
            Problem(
                "payload.nested_value",
                f"the value of {key!r} is a JSON {_json_type(value)}; payload values "
                "must be strings, numbers or booleans",
                index,
                field,
            )
        )
    elif value_type is float and not math.isfinite(value):
        problems.append(_out_of_range(key, index, field))
    elif value is None:
        problems.append(
            Problem(
                "payload.null_value",
                f"the value of {key!r} is null; leave the key out instead",
                index,
                field,
            )
        )
    if key in RESERVED_KEYS:
        problems.append(
            Problem(
                "payload.reserved_key",
                f"payload key {key!r} is reserved for the ingest server (send '_{key}')",
                index,
                field,
            )
        )
    elif not key:
        problems.append(
            Problem("payload.empty_key", "a payload key is the empty string", index, field)
        )
    elif len(key) > MAX_KEY_LENGTH:
        problems.append(
            Problem(
                "payload.key_too_long",
                f"payload key {key[:40]!r}... is {len(key)} characters; at most {MAX_KEY_LENGTH}",
                index,
                "payload",
            )
        )


def _lone_surrogates(signals: Sequence[Any]) -> list[Problem]:
    problems = []
    for index, signal in enumerate(signals):
        try:
            json.dumps(signal, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            problems.append(
                Problem(
                    "signal.lone_surrogate",
                    f"signal {index} holds a \\uD800-\\uDFFF escape without its pair; "
                    "such a string is not valid Unicode",
                    index,
                )
            )
    return problems


def _out_of_range(key: str, index: int, field: str) -> Problem:
    return Problem(
        "payload.number_range",
        f"the number in {key!r} does not fit a double-precision float",
        index,
        field,
    )


def _field_type(name: str, value: object, index: int) -> Problem:
    return Problem(
        "signal.field_type",
        f"{name!r} must be a string, got a JSON {_json_type(value)} ({_preview(value)})",
        index,
        name,
    )


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _preview(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
