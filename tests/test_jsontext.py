"""`dumps_indented` writes byte for byte what `json.dumps(indent=..., sort_keys=...)` writes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentfleet.core.jsontext import dumps_indented
from agentfleet.core.plan import build_plan

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
DOCS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(DOCS, st.sampled_from([0, 2, 4]), st.booleans())
def test_same_text_as_the_standard_library(doc: Any, indent: int, sort_keys: bool) -> None:
    assert dumps_indented(doc, indent=indent, sort_keys=sort_keys) == json.dumps(doc, indent=indent, sort_keys=sort_keys)


@pytest.mark.parametrize("doc", [
    {1: "int key"}, {None: [True]}, {"a": float("nan")}, [float("inf"), -float("inf")], {"x": {2.5: 1}},
])
def test_odd_keys_and_values_are_the_standard_librarys_too(doc: Any) -> None:
    assert dumps_indented(doc) == json.dumps(doc, indent=2)


def test_what_json_refuses_is_refused_the_same_way() -> None:
    for doc in ({"a": object()}, {(1, 2): "tuple key"}):
        with pytest.raises(TypeError) as ours:
            dumps_indented(doc)
        with pytest.raises(TypeError) as theirs:
            json.dumps(doc, indent=2)
        assert str(ours.value) == str(theirs.value)


def test_the_plan_of_the_sample_fleet(sample_fleet: Any, dev_settings: Any) -> None:
    plan = build_plan(sample_fleet, dev_settings)
    assert dumps_indented(plan) == json.dumps(plan, indent=2)
