"""Every validation rule, through real HTTP POSTs to a collector on loopback."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from td_web._sanitize import MAX_KEY_LENGTH, MAX_TYPE_LENGTH, MAX_VALUE_LENGTH, RESERVED_KEYS
from td_web._transport import http_library
from td_web.collector import RULES, Collector

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

Signal = Callable[..., dict[str, Any]]


def rules_in(response: httpx.Response) -> list[tuple[str, int | None, str | None]]:
    return [(v["rule"], v["signal"], v["field"]) for v in response.json()["violations"]]


def assert_rejected(
    response: httpx.Response,
    collector: Collector,
    rule: str,
    *,
    status: int = 400,
    index: int | None = 0,
    field: str | None = None,
) -> None:
    """The answer names the rule (at the signal index), it is stored, and nothing was kept."""
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["accepted"] == 0
    named = [(r, i) for r, i, _ in rules_in(response)]
    assert (rule, index) in named, answer
    if field is not None:
        assert (rule, index, field) in rules_in(response)
    stored = collector.violations(rule)
    assert stored, f"{rule} was not recorded"
    assert stored[-1].signal_index == index
    assert collector.signals() == []


# -- a good batch ----------------------------------------------------------------------------


def test_valid_batch_is_accepted_and_stored(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    batch = [signal_factory(type=f"Example.number{i}") for i in range(3)]
    response = post(batch)
    assert response.status_code == 200
    assert response.json() == {"accepted": 3}
    assert [s.type for s in collector.signals()] == [
        "Example.number0",
        "Example.number1",
        "Example.number2",
    ]
    assert collector.violations() == []


def test_minimal_signal_with_only_required_fields_is_accepted(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    response = post([signal_factory(drop=["sessionID", "isTestMode", "payload"])])
    assert response.status_code == 200
    stored = collector.signals()[0]
    assert stored.session_id is None
    assert stored.is_test_mode is None


def test_payload_primitives_of_every_kind_are_accepted(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    payload = {
        "text": "héllo ✓ \U0001f600",
        "integer": 42,
        "negative": -1.5,
        "flag": True,
        "other": False,
        "floatValue": 3.25,
        "_count": "renamed reserved keys are fine",
        "k" * MAX_KEY_LENGTH: "v" * MAX_VALUE_LENGTH,
    }
    response = post([signal_factory(payload=payload, type="T" * MAX_TYPE_LENGTH)])
    assert response.status_code == 200, response.text
    assert collector.signals()[0].payload == payload


def test_integer_float_value_is_a_number(post: Any, signal_factory: Signal) -> None:
    assert post([signal_factory(payload={"floatValue": 7})]).status_code == 200


def test_escaped_surrogate_pair_is_valid_unicode(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    body = json.dumps([signal_factory(payload={"emoji": "\U0001f600"})], ensure_ascii=True)
    assert "\\ud83d\\ude00" in body
    assert post(body.encode()).status_code == 200
    assert collector.signals()[0].payload["emoji"] == "\U0001f600"


# -- the body ------------------------------------------------------------------------------


def test_body_that_is_an_object_is_not_an_array(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    assert_rejected(post(signal_factory()), collector, "body.not_array", index=None)


@pytest.mark.parametrize(
    "body",
    [b"[{", b"", b"[1,]", b'[{"floatValue": NaN}]', b"[Infinity]", b"\xef\xbb\xbf[]"],
    ids=["truncated", "empty", "trailing-comma", "nan", "infinity", "bom"],
)
def test_body_that_is_not_json(post: Any, collector: Collector, body: bytes) -> None:
    assert_rejected(post(body), collector, "body.not_json", index=None)


def test_body_that_is_not_utf8(post: Any, collector: Collector) -> None:
    assert_rejected(post(b'[{"type": "caf\xe9"}]'), collector, "body.not_utf8", index=None)


def test_empty_array(post: Any, collector: Collector) -> None:
    assert_rejected(post([]), collector, "body.empty", index=None)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_content_type_must_be_json(
    post: Any, collector: Collector, signal_factory: Signal, content_type: str | None
) -> None:
    response = post([signal_factory()], content_type=content_type)
    assert_rejected(response, collector, "content_type", status=415, index=None)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; Charset=UTF-8", 'application/json; charset="utf-8"'],
)
def test_json_content_type_spellings_are_accepted(
    post: Any, signal_factory: Signal, content_type: str
) -> None:
    assert post([signal_factory()], content_type=content_type).status_code == 200


def test_chunked_body_without_length_is_refused(
    collector: Collector, http: httpx.Client, signal_factory: Signal
) -> None:
    def chunks() -> Iterator[bytes]:
        yield json.dumps([signal_factory()]).encode()

    response = http.post(
        collector.ingest_url, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_rejected(response, collector, "body.length_required", status=411, index=None)
    assert response.headers["connection"] == "close"


def test_body_over_the_limit_is_413_and_at_the_limit_is_accepted(
    tmp_path: Path, signal_factory: Signal
) -> None:
    body = json.dumps([signal_factory()]).encode()
    with (
        Collector(tmp_path / "small.db", max_body_bytes=len(body)) as small,
        httpx.Client() as http,
    ):
        headers = {"Content-Type": "application/json"}
        assert http.post(small.ingest_url, content=body, headers=headers).status_code == 200
        too_big = body[:-1] + b" ]"
        response = http.post(small.ingest_url, content=too_big, headers=headers)
        assert response.status_code == 413
        assert response.json()["violations"][0]["rule"] == "body.too_large"
        assert response.headers["connection"] == "close"
        assert [v.rule for v in small.violations()] == ["body.too_large"]
        assert len(small.signals()) == 1


def test_default_body_limit_is_five_megabytes(post: Any, collector: Collector) -> None:
    response = post(b"[" + b" " * (5 * 1024 * 1024) + b"]")
    assert_rejected(response, collector, "body.too_large", status=413, index=None)


# -- routes --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2", "/v1/", "/v2/namespace/com.example", "/"])
def test_post_to_an_unknown_route(
    post: Any, collector: Collector, signal_factory: Signal, path: str
) -> None:
    assert_rejected(
        post([signal_factory()], path=path),
        collector,
        "request.unknown_route",
        status=404,
        index=None,
    )


def test_namespace_route_stores_the_namespace(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    assert post([signal_factory()], path="/v2/namespace/com.example-app_1/").status_code == 200
    assert post([signal_factory()], path="/v2/").status_code == 200
    assert [s.namespace for s in collector.signals()] == ["com.example-app_1", None]


@pytest.mark.parametrize("namespace", ["-com", "com%20example", "com example", ".com"])
def test_namespace_must_be_reverse_dns(
    post: Any, collector: Collector, signal_factory: Signal, namespace: str
) -> None:
    response = post([signal_factory()], path=f"/v2/namespace/{namespace}/")
    assert_rejected(response, collector, "namespace.invalid", index=None)


def test_get_on_the_ingest_route_is_405(collector: Collector, http: httpx.Client) -> None:
    response = http.get(collector.ingest_url)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# -- signals -------------------------------------------------------------------------------


def test_element_that_is_not_an_object(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    response = post([signal_factory(), "Example.happened"])
    assert_rejected(response, collector, "signal.not_object", index=1)


@pytest.mark.parametrize("field", ["appID", "clientUser", "type"])
def test_missing_required_field(
    post: Any, collector: Collector, signal_factory: Signal, field: str
) -> None:
    response = post([signal_factory(drop=[field])])
    assert_rejected(response, collector, "signal.missing_field", field=field)


@pytest.mark.parametrize(
    ("field", "value"),
    [("appID", 1234), ("clientUser", None), ("type", ["a"]), ("sessionID", 5), ("sessionID", None)],
)
def test_field_of_the_wrong_type(
    post: Any, collector: Collector, signal_factory: Signal, field: str, value: Any
) -> None:
    response = post([signal_factory(**{field: value})])
    assert_rejected(response, collector, "signal.field_type", field=field)


@pytest.mark.parametrize("field", ["appID", "type"])
def test_empty_required_field(
    post: Any, collector: Collector, signal_factory: Signal, field: str
) -> None:
    assert_rejected(
        post([signal_factory(**{field: ""})]), collector, "signal.empty_field", field=field
    )


@pytest.mark.parametrize("field", ["platform", "receivedAt", "payloadd", "float_value"])
def test_unknown_top_level_field(
    post: Any, collector: Collector, signal_factory: Signal, field: str
) -> None:
    response = post([signal_factory(**{field: "x"})])
    assert_rejected(response, collector, "signal.unknown_field", field=field)


@pytest.mark.parametrize("value", ["true", 1, 0, None, "false"])
def test_is_test_mode_must_be_a_json_boolean(
    post: Any, collector: Collector, signal_factory: Signal, value: Any
) -> None:
    response = post([signal_factory(isTestMode=value)])
    assert_rejected(response, collector, "isTestMode.not_bool", field="isTestMode")


@pytest.mark.parametrize(
    "client_user",
    [
        "user@example.com",
        hashlib.sha256(b"x").hexdigest().upper(),
        hashlib.sha256(b"x").hexdigest()[:63],
        hashlib.sha1(b"x").hexdigest(),
    ],
    ids=["raw-id", "uppercase", "63-digits", "sha1"],
)
def test_client_user_must_be_a_sha256_hash(
    post: Any, collector: Collector, signal_factory: Signal, client_user: str
) -> None:
    response = post([signal_factory(clientUser=client_user)])
    assert_rejected(response, collector, "clientUser.not_hash", field="clientUser")


def test_type_too_long(post: Any, collector: Collector, signal_factory: Signal) -> None:
    response = post([signal_factory(type="T" * (MAX_TYPE_LENGTH + 1))])
    assert_rejected(response, collector, "type.too_long", field="type")


def test_lone_surrogate_escape(post: Any, collector: Collector, signal_factory: Signal) -> None:
    body = json.dumps([signal_factory(), signal_factory(payload={"a": "x\ud800y"})])
    assert "\\ud800" in body
    assert_rejected(post(body.encode()), collector, "signal.lone_surrogate", index=1)


# -- payloads ------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], "a=b", None, 3])
def test_payload_must_be_an_object(
    post: Any, collector: Collector, signal_factory: Signal, payload: Any
) -> None:
    response = post([signal_factory(payload=payload)])
    assert_rejected(response, collector, "payload.not_object", field="payload")


@pytest.mark.parametrize("value", [{"a": "b"}, ["a", "b"], {}, []])
def test_payload_values_must_not_nest(
    post: Any, collector: Collector, signal_factory: Signal, value: Any
) -> None:
    response = post([signal_factory(payload={"Example.nested": value})])
    assert_rejected(response, collector, "payload.nested_value", field="payload.Example.nested")


def test_payload_values_must_not_be_null(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    response = post([signal_factory(payload={"Example.missing": None})])
    assert_rejected(response, collector, "payload.null_value", field="payload.Example.missing")


@pytest.mark.parametrize("key", sorted(RESERVED_KEYS))
def test_reserved_payload_keys(
    post: Any, collector: Collector, signal_factory: Signal, key: str
) -> None:
    response = post([signal_factory(payload={key: "1"})])
    assert_rejected(response, collector, "payload.reserved_key", field=f"payload.{key}")


@pytest.mark.parametrize("value", ["3.5", True, None, [1.0]])
def test_float_value_must_be_a_json_number(
    post: Any, collector: Collector, signal_factory: Signal, value: Any
) -> None:
    response = post([signal_factory(payload={"floatValue": value})])
    assert_rejected(response, collector, "payload.floatValue_type", field="payload.floatValue")


@pytest.mark.parametrize(
    "signal_fields",
    [
        {"floatValue": 2.5, "payload": {"floatValue": 2.5}},
        {"floatValue": 2, "payload": {"floatValue": 2.0}},
        {"floatValue": 2.5},
        {"floatValue": 2.5, "payload": {"Other.key": "x"}},
    ],
)
def test_top_level_float_value_is_accepted_alone_or_equal_to_the_payloads(
    post: Any, signal_factory: Signal, signal_fields: dict[str, Any]
) -> None:
    response = post([signal_factory(**signal_fields)])
    assert response.status_code == 200, response.text


def test_top_level_and_payload_float_values_must_be_the_same_number(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    response = post([signal_factory(floatValue=2.5, payload={"floatValue": 3.5})])
    assert_rejected(response, collector, "floatValue.mismatch", field="floatValue")


@pytest.mark.parametrize("value", ["2.5", True, None, {"n": 1}])
def test_top_level_float_value_must_be_a_json_number(
    post: Any, collector: Collector, signal_factory: Signal, value: Any
) -> None:
    response = post([signal_factory(floatValue=value)])
    assert_rejected(response, collector, "floatValue.type", field="floatValue")


@pytest.mark.parametrize("key", ["floatValue", "Example.big"])
def test_numbers_beyond_a_double(
    post: Any, collector: Collector, signal_factory: Signal, key: str
) -> None:
    body = json.dumps([signal_factory(payload={key: 1.0})]).replace("1.0", "1e400")
    assert_rejected(post(body.encode()), collector, "payload.number_range", field=f"payload.{key}")


def test_empty_payload_key(post: Any, collector: Collector, signal_factory: Signal) -> None:
    response = post([signal_factory(payload={"": "x"})])
    assert_rejected(response, collector, "payload.empty_key")


def test_payload_key_too_long(post: Any, collector: Collector, signal_factory: Signal) -> None:
    response = post([signal_factory(payload={"k" * (MAX_KEY_LENGTH + 1): "x"})])
    assert_rejected(response, collector, "payload.key_too_long")


def test_payload_value_too_long(post: Any, collector: Collector, signal_factory: Signal) -> None:
    response = post([signal_factory(payload={"Example.long": "v" * (MAX_VALUE_LENGTH + 1)})])
    assert_rejected(response, collector, "payload.value_too_long", field="payload.Example.long")


# -- whole-batch policy ------------------------------------------------------------------------


def test_one_bad_signal_rejects_the_whole_batch_and_names_every_problem(
    post: Any, collector: Collector, signal_factory: Signal
) -> None:
    batch = [
        signal_factory(type="Example.good"),
        signal_factory(type="Example.bad", isTestMode="yes", payload={"count": 1}),
        signal_factory(type="Example.alsoGood"),
        signal_factory(type="Example.worse", drop=["appID"]),
    ]
    response = post(batch)
    assert response.status_code == 400
    assert sorted(rules_in(response), key=str) == sorted(
        [
            ("isTestMode.not_bool", 1, "isTestMode"),
            ("payload.reserved_key", 1, "payload.count"),
            ("signal.missing_field", 3, "appID"),
        ],
        key=str,
    )
    assert "3 problem(s) in 2 of 4 signal(s)" in response.json()["error"]
    assert collector.signals() == []
    stored = collector.violations()
    assert {(v.rule, v.signal_index, v.signal_type) for v in stored} == {
        ("isTestMode.not_bool", 1, "Example.bad"),
        ("payload.reserved_key", 1, "Example.bad"),
        ("signal.missing_field", 3, "Example.worse"),
    }
    # Each violation keeps the offending signal itself, for the live page.
    offending = next(v for v in stored if v.signal_index == 1)
    assert offending.signal_json is not None
    assert json.loads(offending.signal_json) == batch[1]


def test_bad_body_is_kept_as_an_excerpt(post: Any, collector: Collector) -> None:
    post(b"this is not json at all")
    (violation,) = collector.violations("body.not_json")
    assert violation.signal_json == "this is not json at all"


def test_every_rule_id_is_documented() -> None:
    for rule, meaning in RULES.items():
        assert rule and meaning
    assert {
        "body.not_array",
        "signal.missing_field",
        "signal.field_type",
        "signal.unknown_field",
        "payload.not_object",
        "payload.nested_value",
        "payload.reserved_key",
        "payload.floatValue_type",
        "content_type",
        "body.not_json",
        "body.not_utf8",
        "clientUser.not_hash",
        "isTestMode.not_bool",
    } <= set(RULES)


# -- HTTP/1.1 ------------------------------------------------------------------------------


def _read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    status_line = stream.readline().decode()
    headers = {}
    while (line := stream.readline().decode().strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def test_keep_alive_serves_several_batches_on_one_connection(
    collector: Collector, signal_factory: Signal
) -> None:
    body = json.dumps([signal_factory()]).encode()
    request = (
        f"POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((collector.host, collector.port), timeout=5) as connection:
        stream = connection.makefile("rb")
        for _ in range(3):
            connection.sendall(request)
            status, headers, _ = _read_response(stream)
            assert status == 200
            assert headers.get("connection") != "close"
    assert len(collector.signals()) == 3


def test_stop_closes_idle_keep_alive_connections(db_path: Path) -> None:
    collector = Collector(db_path).start()
    with socket.create_connection((collector.host, collector.port), timeout=5) as connection:
        connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = _read_response(connection.makefile("rb"))
        assert status == 200
        collector.stop(timeout=5)
        # The server side shut the idle connection down instead of leaving its thread behind.
        assert connection.recv(1) == b""
