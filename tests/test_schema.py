"""The JSON Schema of agents.yaml: generated from the model, committed, and never stale.

The `jsonschema` package is not installed in .venv, so agents.yaml is checked against the schema
two ways: through the pydantic model the schema is generated from, and with the small validator
below, which implements exactly the keywords the generated schema uses (a test asserts that no
other keyword appears, so the check cannot silently skip a rule).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agentfleet.cli.main import main
from agentfleet.cli.cmd_review import SCHEMA_FILE, fleet_json_schema, schema_text
from agentfleet.core.loader import FleetError, parse_fleet
from agentfleet.core.model import ROTATION_STRATEGIES, FleetFile

HINT = f"# yaml-language-server: $schema=./{SCHEMA_FILE}"
SUPPORTED = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "default", "examples", "type",
    "properties", "patternProperties", "additionalProperties", "required", "items", "minItems",
    "anyOf", "enum", "const", "pattern", "minimum", "maximum",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "boolean": (bool,),
    "null": (type(None),),
}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def keywords(node: Any, inside_props: bool = False) -> set[str]:
    """Every schema keyword used (keys of `properties`/`$defs`/... are names, not keywords)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if not inside_props:
                found.add(k)
            names = k in ("properties", "patternProperties", "$defs") and not inside_props
            if k in ("default", "examples", "enum", "const", "required") and not inside_props:
                continue
            found |= keywords(v, inside_props=names)
    elif isinstance(node, list):
        for v in node:
            found |= keywords(v)
    return found


def errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """Validate `value` against the keyword subset above; one message per violation."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return errors(value, root["$defs"][name], root, where)
    if "anyOf" in schema:
        branches = [errors(value, s, root, where) for s in schema["anyOf"]]
        return [] if any(not b for b in branches) else min(branches, key=len)
    out: list[str] = []
    t = schema.get("type")
    if t is not None:
        ok = isinstance(value, _TYPES[t]) and not (t == "integer" and isinstance(value, bool))
        if not ok:
            return [f"{where}: expected {t}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and value < schema["minimum"]:
        out.append(f"{where}: below minimum")
    if "maximum" in schema and value > schema["maximum"]:
        out.append(f"{where}: above maximum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: too few items")
        for i, item in enumerate(value):
            out += errors(item, schema.get("items", {}), root, f"{where}[{i}]")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        patterns: dict[str, Any] = schema.get("patternProperties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}: missing {key}")
        for key, item in value.items():
            if key in props:
                out += errors(item, props[key], root, f"{where}.{key}")
                continue
            matched = [s for p, s in patterns.items() if re.search(p, key)]
            for s in matched:
                out += errors(item, s, root, f"{where}.{key}")
            if not matched and schema.get("additionalProperties") is False:
                out.append(f"{where}: unknown key {key}")
    return out


def load_yaml(text: str) -> Any:
    return json.loads(json.dumps(YAML(typ="safe").load(text)))


def test_committed_schema_is_up_to_date(repo: Path) -> None:
    committed = (repo / SCHEMA_FILE).read_text()
    assert committed == schema_text(), (
        f"{SCHEMA_FILE} is stale: run `.venv/bin/agentfleet schema > {SCHEMA_FILE}` and commit it"
    )
    code, out, err = run("schema")
    assert (code, out, err) == (0, committed, "")


def test_schema_is_generated_from_the_model() -> None:
    schema = fleet_json_schema()
    model = FleetFile.model_json_schema(by_alias=True)
    assert schema["$defs"].keys() == model["$defs"].keys()
    assert schema["properties"].keys() == model["properties"].keys()
    assert schema["required"] == model["required"]
    for name, spec in model["$defs"].items():
        if "enum" in spec:
            assert schema["$defs"][name]["enum"] == spec["enum"]
            continue
        assert schema["$defs"][name]["properties"].keys() == spec["properties"].keys()
    assert schema["title"] and schema["description"] and schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert "$schema" in schema["properties"]  # the editor hint key is allowed in the file
    assert schema["$defs"]["Rotation"]["properties"]["strategy"]["$ref"] == "#/$defs/Strategy"
    assert schema["$defs"]["Strategy"]["enum"] == list(ROTATION_STRATEGIES)  # the model's enum, not a copy


def test_mini_validator_covers_every_keyword_the_schema_uses() -> None:
    assert keywords(fleet_json_schema()) <= SUPPORTED


def test_agents_yaml_carries_the_hint_and_validates(root: Path, repo: Path) -> None:
    text = (root / "agents.yaml").read_text()
    assert text.splitlines()[0] == HINT
    assert (repo / SCHEMA_FILE).is_file()
    data = load_yaml(text)
    schema = json.loads((repo / SCHEMA_FILE).read_text())
    assert errors(data, schema, schema) == []
    FleetFile.model_validate_json(json.dumps(data), strict=True)  # the model the schema came from


def test_dollar_schema_key_is_accepted_by_schema_and_loader(root: Path) -> None:
    text = f"$schema: ./{SCHEMA_FILE}\n" + (root / "agents.yaml").read_text()
    schema = fleet_json_schema()
    assert errors(load_yaml(text), schema, schema) == []
    assert len(parse_fleet(text, "agents.yaml").agents) == 5


BROKEN = {
    "unknown top-level key": ("version: 1\n", "version: 1\nowners: []\n", "unknown key owners"),
    "unknown strategy": ("{strategy: openai, days: 90}", "{strategy: weekly, days: 90}", "not in"),
    "days out of range": ("{strategy: openai, days: 90}", "{strategy: openai, days: 0}", "below minimum"),
    "bad store": ("stores: [aws]\n\n  - name: crm", "stores: [s3]\n\n  - name: crm", "not in"),
    "wrong type": ("version: 1", "version: '1'", "expected integer"),
    "missing credentials type": ("        type: api_key\n        classification: internal\n        rotation: {strategy: openai, days: 90}",
                                 "        classification: internal\n        rotation: {strategy: openai, days: 90}", "missing type"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_schema_rejects_what_the_loader_rejects(name: str, root: Path) -> None:
    old, new, message = BROKEN[name]
    text = (root / "agents.yaml").read_text()
    assert text.count(old) == 1, name
    broken = text.replace(old, new)
    schema = fleet_json_schema()
    found = errors(load_yaml(broken), schema, schema)
    assert len(found) == 1 and message in found[0], found
    with pytest.raises(FleetError):
        parse_fleet(broken, "agents.yaml")
