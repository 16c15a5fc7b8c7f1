"""The pack as a whole: every policy registered, assembled by __main__.py (read, never imported)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

from pulumi_policy import EnforcementLevel, Policy, PolicyPack, StackValidationPolicy
from ruamel.yaml import YAML

import agentfleet.policy
from agentfleet.policy.registry import ALL_POLICIES, DOMAIN_MODULES

RULES_DIR = Path(agentfleet.policy.__file__).resolve().parent
PACK_DIR = Path(__file__).resolve().parents[1] / "policy"
ISSUE_POLICIES = {
    "secret-rotation-within-class", "no-wildcard-secret-read", "one-reader-per-secret", "secret-encrypted-with-cmk",
    "secret-resource-policy-denies-others", "trust-policy-scoped", "vault-policy-confined", "rotation-role-scoped",
    "no-literal-secret-values", "required-tags", "iam-policy-lint",
    # Parameter Store (issue 15, agentfleet/policy/ssm.py)
    "ssm-parameter-securestring-cmk", "ssm-parameter-no-literal-value", "ssm-parameter-reads-confined",
}
NOT_SECURITY = {"required-tags"}


def _policy_objects(module: object) -> list[Policy]:
    return [v for v in vars(module).values() if isinstance(v, Policy)]


def test_every_policy_object_of_every_module_is_registered() -> None:
    registered = {id(p) for p in ALL_POLICIES}
    modules_with_policies = set()
    for info in pkgutil.iter_modules([str(RULES_DIR)]):
        if info.name == "__main__":
            continue  # blocks forever when imported
        module = importlib.import_module(f"agentfleet.policy.{info.name}")
        objects = _policy_objects(module)
        if objects and module.__name__ not in ("agentfleet.policy.registry",):
            modules_with_policies.add(module.__name__)
        missing = [p.name for p in objects if id(p) not in registered]
        assert not missing, f"{module.__name__} defines policies missing from registry.ALL_POLICIES: {missing}"
    assert modules_with_policies == {m.__name__ for m in DOMAIN_MODULES}


def test_the_issue_policies_are_all_there_with_unique_kebab_names() -> None:
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    assert set(names) == ISSUE_POLICIES
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", n) for n in names)


def test_descriptions_are_one_sentence_and_levels_are_set() -> None:
    for p in ALL_POLICIES:
        assert p.description.endswith(".") and p.description.count(". ") == 0, p.name
        assert p.remediation_steps, p.name
        expected = EnforcementLevel.ADVISORY if p.name in NOT_SECURITY else EnforcementLevel.MANDATORY
        assert p.enforcement_level == expected, p.name
    assert {p.name for p in ALL_POLICIES if isinstance(p, StackValidationPolicy)} == {
        "secret-rotation-within-class", "one-reader-per-secret", "secret-resource-policy-denies-others",
        "no-literal-secret-values", "ssm-parameter-reads-confined",
    }


def test_main_only_assembles_the_registry() -> None:
    tree = ast.parse((PACK_DIR / "__main__.py").read_text(encoding="utf-8"))
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("agentfleet.policy.registry", "ALL_POLICIES") in imports
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == PolicyPack.__name__]
    assert len(calls) == 1
    kwargs = {k.arg: k.value for k in calls[0].keywords}
    policies = kwargs["policies"]
    assert isinstance(policies, ast.Call) and isinstance(policies.args[0], ast.Name) and policies.args[0].id == "ALL_POLICIES"
    # Nothing else is defined there: no function, class or policy object.
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def test_the_repository_pack_folder_is_the_generated_one() -> None:
    """policy/ is `agentfleet policy-pack policy --virtualenv ../.venv`, byte for byte."""
    from agentfleet.policy.pack import REPO_PACK_VIRTUALENV, pack_files

    expected = pack_files(virtualenv=REPO_PACK_VIRTUALENV)
    found = {p.name: p.read_text(encoding="utf-8") for p in PACK_DIR.iterdir() if p.is_file()}
    assert found == expected, "regenerate: .venv/bin/agentfleet policy-pack policy --virtualenv ../.venv"
    doc = YAML(typ="safe").load(expected["PulumiPolicy.yaml"])
    assert doc["runtime"]["name"] == "python" and doc["description"]
    assert (PACK_DIR / doc["runtime"]["options"]["virtualenv"]).resolve() == PACK_DIR.parent / ".venv"


def test_a_pack_for_another_project_installs_agentfleet_in_its_own_venv() -> None:
    from agentfleet.policy.pack import pack_files

    files = pack_files()
    doc = YAML(typ="safe").load(files["PulumiPolicy.yaml"])
    assert doc["runtime"]["options"] == {"toolchain": "pip", "virtualenv": "venv"}
    assert files["requirements.txt"].splitlines()[-1] == f"agentfleet=={agentfleet.__version__}"
    assert pack_files("agentfleet @ git+https://example.invalid/agentfleet.git")["requirements.txt"].endswith(
        "agentfleet @ git+https://example.invalid/agentfleet.git\n")
