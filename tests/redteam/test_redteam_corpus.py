"""The red-team corpus (tests/redteam/variants.py): every variant appended to the real program must
make `agentfleet check` fail with a mandatory violation of the policy it is about, while the
unmodified program (and the corpus' prelude alone) passes.

Speed: each variant is one full evaluation of the real `__main__.py` under the mocks, in process
(the snippet runs in the program's globals, exactly as if appended to the file) plus the pack; a
handful more go through the real CLI on a copied `__main__.py` with the snippet appended.
"""

from __future__ import annotations

import io
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentfleet.cli.main import main
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import policy_config, runtime_accounts
from agentfleet.runner import checkrun, mockrun
from tests.conftest import REPO
from tests.redteam.variants import PRELUDE, VARIANTS, Variant

CLI_VARIANTS = ("vault-comment-opener-in-string", "managed-secretsmanager-readwrite", "second-secret-policy-partial-arn",
                "literal-through-apply-on-random", "oidc-sub-org-wildcard", "vault-kubernetes-role")
"""Variants also run through `agentfleet check` on a temporary project (the real CLI path)."""


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return policy_config(dev_settings, sample_fleet.classifications, runtime_accounts(sample_fleet))


def run_with(root: Path, config: dict[str, Any], code: str | None) -> checkrun.CheckResult:
    def program() -> None:
        scope = runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        if code is not None:
            exec(compile(PRELUDE + code, "<appended to __main__.py>", "exec"), scope)  # noqa: S102 - the corpus is ours

    return checkrun.check_program(mockrun.run_program("dev", root=root, program=program), config)


def test_corpus_is_large_and_unique() -> None:
    assert len(VARIANTS) >= 60
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)


def test_unmodified_program_and_prelude_pass(root: Path, config: dict[str, Any]) -> None:
    for code in (None, ""):
        result = run_with(root, config, code)
        assert result.exit_code == 0, [f"{v.policy}: {v.message}" for v in result.mandatory]
        assert result.resources > 100


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_variant_fails_check(variant: Variant, root: Path, config: dict[str, Any]) -> None:
    result = run_with(root, config, variant.code)
    assert result.exit_code == 1
    found = {v.policy for v in result.mandatory}
    assert found & variant.policies, f"{variant.name}: expected one of {sorted(variant.policies)}, got {sorted(found)}"


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("name", CLI_VARIANTS)
def test_variant_fails_through_the_cli(name: str, root: Path, tmp_path: Path) -> None:
    variant = {v.name: v for v in VARIANTS}[name]
    shutil.copy(REPO / "__main__.py", tmp_path / "__main__.py")
    for f in ("agents.yaml", "Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(root / f, tmp_path / f)
    code, out = _cli("check", "--stack", "dev", "--root", str(tmp_path))
    assert code == 0, out  # the copied, unmodified program passes
    with (tmp_path / "__main__.py").open("a", encoding="utf-8") as fh:
        fh.write("\n" + PRELUDE + variant.code + "\n")
    code, out = _cli("check", "--stack", "dev", "--root", str(tmp_path))
    assert code == 1, out
    assert any(f"[mandatory] {p}:" in out for p in variant.policies), out
