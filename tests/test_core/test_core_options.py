"""The option table (``td_web._options``) is the one place an option is declared: the
dataclasses, the environment variables, the framework spellings, the docs and the commands
all follow it."""

from __future__ import annotations

import ast
import logging
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from conftest import APP_ID
from integration_scenarios import OPTIONS as SCENARIO_OPTIONS

from td_web import ConfigurationError, TelemetryDeck
from td_web._commands import ConfigurationCheck, Front, resolve
from td_web._config import ClientConfig, build_config
from td_web._options import CLIENT, NO_SALT, OPTIONS, WEB, unknown_names_error
from td_web._transport import http_library
from td_web._web.settings import WebSettings, split_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("layer", "dataclass"), [(CLIENT, ClientConfig), (WEB, WebSettings)])
def test_each_layers_fields_are_its_rows(layer: str, dataclass: type) -> None:
    """A field without a row (or a row without a field) fails here: name, annotation and
    default agree, so the dataclass only gives the table's rows their Python types."""
    rows = {name: option for name, option in OPTIONS.items() if option.layer == layer}
    declared = fields(dataclass)
    assert [field.name for field in declared] == list(rows)
    for field in declared:
        option = rows[field.name]
        assert field.type == option.type, field.name
        assert field.default is not MISSING and field.default == option.default, field.name


def test_every_option_has_a_parser_a_doc_and_a_scenario() -> None:
    assert set(SCENARIO_OPTIONS) == set(OPTIONS), "a new option needs a row in both tables"
    for name, option in OPTIONS.items():
        assert callable(option.parse), name
        assert option.doc.strip() and "\n" not in option.doc, name


def test_every_environment_variable_is_the_flask_spelling_and_documented() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    variables = {option.env for option in OPTIONS.values() if option.env}
    assert variables, "the client reads some options from the environment"
    for option in OPTIONS.values():
        if option.env:
            assert option.layer == CLIENT, option.name
            assert option.env == option.flask_key, option.name
            assert f"`{option.env}`" in readme, f"{option.env} is not in the README"


def test_every_client_option_has_a_row_in_one_of_the_readmes_option_tables() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    documented = {name.strip("` ") for row in rows for name in row.split("|")[1].split(",")}
    client = {name for name, option in OPTIONS.items() if option.layer == CLIENT}
    assert client - documented == set()


#: An environment value for each option that has a variable, and what the client makes of it.
ENVIRONMENT_CASES = {
    "app_id": (APP_ID, APP_ID),
    "salt": (" pepper ", " pepper "),  # a salt is taken as it is, spaces included
    "endpoint": ("http://127.0.0.1:9 ", "http://127.0.0.1:9"),
    "namespace": ("com.example", "com.example"),
    "test_mode": ("yes", True),
    "enabled": ("off", False),
    "app_version": ("1.2.3", "1.2.3"),
    "http_client": (http_library().__name__, http_library().__name__),
    "spool_path": ("/tmp/td-web-options-test.sqlite", "/tmp/td-web-options-test.sqlite"),
    "build_number": ("42", "42"),
    "environment": ("staging", "staging"),
}


def test_every_environment_variable_reaches_the_client() -> None:
    with_variable = {name for name, option in OPTIONS.items() if option.env}
    assert set(ENVIRONMENT_CASES) == with_variable, "a new environment variable needs a case"
    for name, (text, expected) in ENVIRONMENT_CASES.items():
        environ = {"TELEMETRYDECK_APP_ID": APP_ID, OPTIONS[name].env or "": text}
        assert getattr(build_config({}, environ=environ), name) == expected, name


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"TELEMETRYDECK_ENDPOINT must be .*'ftp://x'"):
        build_config({"app_id": APP_ID}, environ={"TELEMETRYDECK_ENDPOINT": "ftp://x"})


def test_max_in_flight_is_a_client_option_from_1_to_64() -> None:
    assert build_config({"app_id": APP_ID, "max_in_flight": 3}, environ={}).max_in_flight == 3
    assert ClientConfig().max_in_flight == 32
    with pytest.raises(ConfigurationError, match="max_in_flight must be at least 1, got 0"):
        build_config({"app_id": APP_ID, "max_in_flight": 0}, environ={})
    with pytest.raises(ConfigurationError, match="max_in_flight must be at most 64, got 65"):
        build_config({"app_id": APP_ID, "max_in_flight": 65}, environ={})


@pytest.mark.parametrize(
    ("typo", "known", "suggested"),
    [
        ("flush_intervall", set(OPTIONS), "flush_interval"),
        ("salt", {option.django_key for option in OPTIONS.values()}, "SALT"),
        ("TELEMETRYDECK_APPID", {option.flask_key for option in OPTIONS.values()}, None),
    ],
)
def test_an_unknown_name_gets_the_closest_known_one(
    typo: str, known: set[str], suggested: str | None
) -> None:
    message = str(unknown_names_error("key", "somewhere", [typo], known))
    assert message.startswith(f"unknown td_web key(s) in somewhere: {typo}.")
    expected = suggested or "TELEMETRYDECK_APP_ID"
    assert f"{typo}: did you mean {expected}?" in message


def test_an_adapters_unknown_option_gets_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="exclude_path: did you mean exclude_paths"):
        split_options({"exclude_path": ["/x"]}, "TelemetryDeckMiddleware(...)")


def test_the_no_salt_warning_is_one_text(caplog: pytest.LogCaptureFixture) -> None:
    """The client's log line and ``td-web check``'s line say the same thing."""
    with caplog.at_level(logging.INFO, logger="td_web"):
        TelemetryDeck(app_id=APP_ID, salt="", endpoint="http://127.0.0.1:9", sync=True).close(0)
    assert f"td_web: {NO_SALT}. Set a salt (TELEMETRYDECK_SALT)." in caplog.messages
    outcome, _, detail = ConfigurationCheck({}, timeout=1, front=Front()).check_salt()
    assert (outcome, detail) == ("warn", f"none: {NO_SALT}; set TELEMETRYDECK_SALT")


def test_the_commands_read_the_environment_through_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_NAMESPACE", "com.example")
    assert resolve({}, None, "namespace") == "com.example"
    assert resolve({"namespace": "org.given"}, None, "namespace") == "org.given"
    for module in ("cli.py", "_commands.py"):
        tree = ast.parse((ROOT / "td_web" / module).read_text(encoding="utf-8"))
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        assert not names & {"environ", "getenv"}, f"{module} reads the environment itself"


def test_the_docs_page_lists_every_row() -> None:
    sys.path.insert(0, str(ROOT / "docs" / "_hooks"))
    try:
        import options_page
    finally:
        sys.path.remove(str(ROOT / "docs" / "_hooks"))
    tables = options_page.options_tables()
    for name, option in OPTIONS.items():
        row = f"| `{name}` | `{option.django_key}` | `{option.flask_key}` | "
        assert row in tables, name
        assert option.doc.replace("|", "\\|") in tables, name
        if option.env:
            assert f"`{option.env}`" in tables, name
