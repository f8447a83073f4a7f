"""The depth scan of core/jsonbound.py against an oracle it does not share: the depth of what
``json.loads`` parsed, for JSON that json.dumps wrote from random values whose strings are full of
quotes, backslashes and brackets, in every encoding json.loads reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depthgate.core import jsonbound

# the characters the scan must tell apart, plus text around them
_TRICKY = st.text(alphabet=st.sampled_from('"\\[]{}/u0 aé\n\t\x00\u2028💥'), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TRICKY
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=40,
)


def depth(value: Any) -> int:
    """Nesting of a parsed value: a scalar is 0, a container one more than its deepest item."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def nest(value: Any, levels: int, key: str) -> Any:
    """``value`` inside ``levels`` more containers, alternating objects and arrays."""
    for i in range(levels):
        value = {key: value} if i % 2 else [key, value]
    return value


_DUMPS = st.sampled_from(
    [
        {},
        {"ensure_ascii": False},
        {"separators": (",", ":")},
        {"indent": 1, "ensure_ascii": False},
    ]
)


@settings(max_examples=400)
@given(value=_VALUES, options=_DUMPS)
def test_the_scan_agrees_with_the_parsed_depth(value: Any, options: dict[str, Any]) -> None:
    text = json.dumps(value, **options)
    d = depth(json.loads(text))
    for limit in (d - 1, d, max(d - 3, 0)):
        assert jsonbound.too_deep(text, limit) is (d > limit), (text, limit)


@settings(max_examples=100)
@given(value=_VALUES, key=_TRICKY, levels=st.integers(0, 8))
def test_the_cap_holds_at_its_edge(value: Any, key: str, levels: int) -> None:
    # around the default cap of 64, with the tricky strings at every level
    inner = depth(value)
    deep = nest(value, jsonbound.MAX_JSON_DEPTH - inner - 4 + levels, key)
    text = json.dumps(deep, ensure_ascii=False)
    d = depth(json.loads(text))
    assert jsonbound.too_deep(text) is (d > jsonbound.MAX_JSON_DEPTH)
    if d > jsonbound.MAX_JSON_DEPTH:
        with pytest.raises(jsonbound.JsonTooDeep):
            jsonbound.loads(text.encode())
    else:
        assert jsonbound.loads(text.encode()) == json.loads(text)


@settings(max_examples=100)
@given(
    value=_VALUES,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"]),
)
def test_bytes_in_every_encoding_json_reads(value: Any, encoding: str) -> None:
    text = json.dumps(value, ensure_ascii=False)
    data = text.encode(encoding)
    d = depth(json.loads(data))
    for limit in (d - 1, d):
        assert jsonbound.too_deep(data, limit) is (d > limit)
    assert jsonbound.loads(data, max_depth=d) == json.loads(data)


@pytest.mark.parametrize(
    ("text", "deep_at_2"),
    [
        ('["\\\\", [[]]]', True),  # an escaped backslash ends with the string: the nest is real
        ('["\\\\\\"", [[]]]', True),  # an escaped backslash, then an escaped quote
        ('["\\"[[", "]]"]', False),  # an escaped quote keeps the string open over its brackets
        ('["", "[[[", ""]', False),  # empty strings next to one holding brackets
        ('[{"[": "]"}, {"{": "}"}]', False),
        ('[[["x"]]]', True),
    ],
)
def test_escapes_and_empty_strings(text: str, deep_at_2: bool) -> None:
    assert (depth(json.loads(text)) > 2) is deep_at_2  # the oracle agrees with the table
    assert jsonbound.too_deep(text, 2) is deep_at_2
    assert jsonbound.too_deep(text.encode(), 2) is deep_at_2
