"""The loader reads libyaml's event stream, not a composed node tree: it must see exactly what
YAML's composer sees.

Values against PyYAML's own loader on real fleets; the composer's errors (undefined alias,
duplicate anchor, a second document) with its messages and lines, in its order; aliases and
merge keys as the composer resolves them (an alias to an anchor written later is undefined).
"""

from __future__ import annotations

import pytest
import yaml

from agentfleet.core import loader
from agentfleet.core.loader import FleetError, parse_fleet

from tests.conftest import REPO
from tests.fleetgen import generate_fleet_yaml


def _data(text: str) -> object:
    return loader._parsed(text, "f.yaml").data


@pytest.mark.parametrize("path", ["tests/project/agents.yaml", "tests/fleets/teams/platform-team.yaml"])
def test_fleet_files_read_as_pyyaml_composes_them(path: str) -> None:
    text = (REPO / path).read_text()
    assert _data(text) == yaml.load(text, Loader=yaml.CSafeLoader)


def test_generated_fleet_reads_as_pyyaml_composes_it() -> None:
    text = generate_fleet_yaml(40, 3)
    assert _data(text) == yaml.load(text, Loader=yaml.CSafeLoader)


@pytest.mark.parametrize("text", [
    "a: &x {b: 1, c: [1, 2]}\nd: *x\ne: [*x, *x]\n",
    "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
    "one: &o {x: 1}\ntwo: &t {x: 2, z: 3}\nm:\n  <<: [*o, *t]\n  w: 4\n",
    "a: &s text\nb: *s\nc: !!str 12\nd: '12'\ne: 12\nf: 1.5\ng: ~\nh: true\n",
    "? [a, b]\n: c\nd: 1\n",
    "--- !!map\nk: v\n",
])
def test_aliases_merges_and_tags_as_the_composer_resolves_them(text: str) -> None:
    ours = _data(text)
    if "? [a, b]" in text:  # a complex key: PyYAML cannot even hash it into a dict; we name it
        assert ours == {"<complex key>": "c", "d": 1}
        return
    assert ours == yaml.load(text, Loader=yaml.CSafeLoader)


def _problems(text: str) -> list[str]:
    with pytest.raises(FleetError) as exc:
        parse_fleet(text, "f.yaml")
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize("text, expected", [
    ("version: 1\nagents: *nope\n", "f.yaml:2: YAML syntax error: found undefined alias"),
    # The composer registers an anchor where it is written: an alias before it is undefined.
    ("a: *x\nb: &x 1\n", "f.yaml:1: YAML syntax error: found undefined alias"),
    ("a: &x 1\nb: &x 2\n", "f.yaml:2: YAML syntax error: found duplicate anchor; first occurrence second occurrence"),
    ("version: 1\n---\nversion: 1\n", "f.yaml:2: YAML syntax error: expected a single document in the stream but found another document"),
    # A syntax error anywhere wins over a composer error before it (the parser reads the whole stream first).
    ("a: *x\nb: [1\n", "f.yaml:3: YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'"),
])
def test_composer_errors_keep_the_composers_messages_and_lines(text: str, expected: str) -> None:
    assert _problems(text) == [expected]


def test_composer_errors_match_pyyaml_for_each_case() -> None:
    """The same cases through PyYAML's own composer give the same words and line."""
    for text in ("version: 1\nagents: *nope\n", "a: &x 1\nb: &x 2\n", "version: 1\n---\nversion: 1\n"):
        with pytest.raises(yaml.YAMLError) as exc:
            yaml.compose(text, Loader=yaml.CSafeLoader)
        err = exc.value
        assert isinstance(err, yaml.MarkedYAMLError)
        mark = err.problem_mark or err.context_mark
        assert mark is not None
        words = " ".join(str(x) for x in (err.context, err.problem) if x)
        assert _problems(text) == [f"f.yaml:{mark.line + 1}: YAML syntax error: {words}"]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "--- ~\n", "null\n"])
def test_empty_documents_are_empty_fleets(text: str) -> None:
    assert _problems(text) == ["f.yaml:1: empty fleet file: start with `version: 1` and an `agents:` list"]


@pytest.mark.parametrize("text", ["[]\n", "just text\n", "- a\n- b\n"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    assert _problems(text) == ["f.yaml:1: the fleet file must be a mapping with `version:` and `agents:` at the top level"]


def test_an_alias_reads_its_anchors_lines() -> None:
    """Positions of values reached through an alias are the anchor's lines (as with the node tree)."""
    text = "version: 1\nx: &a\n  name: 7\ny: *a\n"
    parsed = loader._parsed(text, "f.yaml")
    assert parsed.pos.value_line[("x", "name")] == 3
    assert parsed.pos.value_line[("y", "name")] == 3
