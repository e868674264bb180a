"""Splitting a JSON array into elements and their source text agrees with json.loads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from td_web.collector.json_array import split_array

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    elements=st.lists(_json_values, max_size=6),
    indent=st.none() | st.integers(min_value=0, max_value=3),
    ensure_ascii=st.booleans(),
    padding=st.sampled_from(["", " ", "\n", "\t\r\n "]),
)
def test_split_matches_json_loads(
    elements: list[Any], indent: int | None, ensure_ascii: bool, padding: str
) -> None:
    text = padding + json.dumps(elements, indent=indent, ensure_ascii=ensure_ascii) + padding
    split = split_array(text)
    assert split is not None
    parsed, sources = split
    assert parsed == json.loads(text)
    assert [json.loads(source) for source in sources] == parsed
    for source in sources:
        assert source in text


def test_sources_are_the_exact_text() -> None:
    assert split_array('[ {"a" : 1} ,\n"x",[1, 2]]') == (
        [{"a": 1}, "x", [1, 2]],
        ['{"a" : 1}', '"x"', "[1, 2]"],
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        '"[]"',
        "[",
        "[1,]",
        "[1 2]",
        "[1]]",
        "[1] x",
        "[,1]",
        "[NaN]",
        "[-Infinity]",
        "[1]\x0b",  # vertical tab is not JSON whitespace
        "\ufeff[]",
    ],
)
def test_anything_but_one_well_formed_array_is_none(text: str) -> None:
    assert split_array(text) is None


def test_empty_array() -> None:
    assert split_array(" [ ] ") == ([], [])
