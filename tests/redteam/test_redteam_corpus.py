"""The red-team corpus (tests/redteam/variants.py): every variant appended to the real program must
make `agentfleet check` fail with a mandatory violation of the policy it is about, while the
unmodified program (and the corpus' prelude alone) passes.

Speed, honestly: a full evaluation of the program under the mocks costs ~0.7 s of CPU, so 79 of
them would take a minute or more on a shared CI machine. The real program is therefore evaluated
once; each variant's snippet is then evaluated on its own (a tiny mock run, with `fleet` replaced
by a replay of the real run's values: role names/ARNs, secret ARNs/ids/names, the key) and its
resources are checked together with the real run's resources. The mocks are deterministic, so the
variant's resources carry exactly the values an appended snippet would; what the replay lacks
is URN dependencies on the program's resources, so `test_replay_matches_full_runs` runs a
sample of variants both ways (appended in process, the snippet in the program's globals) and
requires the same verdicts, and a handful go through the real CLI on a copied `__main__.py` with
the snippet appended.
"""

from __future__ import annotations

import io
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest

import pulumi

from agentfleet.cli.main import main
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import policy_config, runtime_accounts
from agentfleet.runner import checkrun, mockrun
from tests.conftest import REPO
from tests.redteam.variants import PARENTED_VARIANTS, PRELUDE, VARIANTS, Variant

CLI_VARIANTS = ("vault-comment-opener-in-string", "managed-secretsmanager-readwrite", "second-secret-policy-partial-arn",
                "literal-through-apply-on-random", "oidc-sub-org-wildcard", "vault-kubernetes-role")
"""Variants also run through `agentfleet check` on a temporary project (the real CLI path)."""


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return policy_config(dev_settings, sample_fleet.classifications, runtime_accounts(sample_fleet))


class _Obj:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def _replay_fleet(base: mockrun.ProgramRun) -> Any:
    """What the snippets use of `fleet`, as Outputs of the real run's recorded values (built inside
    the variant's own mock run, as Outputs must be)."""
    def out(value: Any) -> Any:
        return pulumi.Output.from_input(value)

    agents: dict[str, Any] = {}
    for r in base.resources:
        parts = r.name.split("/")
        if r.type == "aws:iam/role:Role" and len(parts) == 2 and parts[1] == "role":
            agent = agents.setdefault(parts[0], _Obj(secrets={}))
            agent.role = _Obj(arn=out(r.outputs["arn"]), name=out(r.outputs["name"]))
        if r.type == "aws:secretsmanager/secret:Secret" and len(parts) == 3 and parts[2] == "secret":
            agent = agents.setdefault(parts[0], _Obj(secrets={}))
            agent.secrets[parts[1]] = _Obj(arn=out(r.outputs["arn"]), id=out(r.id), name=out(r.outputs["name"]))
    [key] = base.of_type("aws:kms/key:Key")
    return _Obj(agents=agents, kms_key_arn=out(key.outputs["arn"]), kms_key_id=out(key.id))


@pytest.fixture(scope="module")
def base(root: Path) -> mockrun.ProgramRun:
    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    return mockrun.run_program("dev", root=root, program=program)


def run_replayed(root: Path, base: mockrun.ProgramRun, settings: StackSettings, config: dict[str, Any], code: str) -> checkrun.CheckResult:
    def program() -> None:
        scope = {"settings": settings, "fleet": _replay_fleet(base)}
        exec(compile(PRELUDE + code, "<variant>", "exec"), scope)  # noqa: S102 - the corpus is ours

    extra = mockrun.run_program("dev", root=root, program=program)
    assert extra.stack_urn == base.stack_urn
    clash = {r.urn for r in extra.resources} & {r.urn for r in base.resources}
    assert not clash, clash
    merged = mockrun.ProgramRun(base.stack, base.stack_urn, base.resources + extra.resources, base.outputs, [], base.config)
    return checkrun.check_program(merged, config)


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
def test_variant_fails_check(variant: Variant, root: Path, base: mockrun.ProgramRun, dev_settings: StackSettings,
                             config: dict[str, Any]) -> None:
    result = run_replayed(root, base, dev_settings, config, variant.code)
    assert result.exit_code == 1
    found = {v.policy for v in result.mandatory}
    assert found & variant.policies, f"{variant.name}: expected one of {sorted(variant.policies)}, got {sorted(found)}"


_OUTPUT_USERS = ("second-secret-policy-output", "second-rotation-1000-days", "kms-direct-decrypt", "kms-key-policy-extra-statement",
                 "literal-through-apply-on-random", "ecs-task-definition-uses-agent-role")
FULL_RUN_SAMPLE = tuple(v for i, v in enumerate(VARIANTS) if i % 8 == 0 or v.name in _OUTPUT_USERS)
"""Every 8th variant, plus those that reference the program's Outputs."""


@pytest.mark.parametrize("variant", FULL_RUN_SAMPLE, ids=lambda v: v.name)
def test_replay_matches_full_runs(variant: Variant, root: Path, base: mockrun.ProgramRun, dev_settings: StackSettings,
                                  config: dict[str, Any]) -> None:
    """The snippet appended to the real program, in its globals, gives the very same mandatory findings."""
    def key(result: checkrun.CheckResult) -> set[tuple[str, str]]:
        return {(v.policy, v.message) for v in result.mandatory}

    full = run_with(root, config, variant.code)
    assert key(full) == key(run_replayed(root, base, dev_settings, config, variant.code))
    assert {v.policy for v in full.mandatory} & variant.policies


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue() + err.getvalue()


def _copy_project(root: Path, into: Path) -> None:
    shutil.copy(REPO / "__main__.py", into / "__main__.py")
    for f in ("agents.yaml", "Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(root / f, into / f)


def test_the_copied_program_passes_through_the_cli(root: Path, tmp_path: Path) -> None:
    _copy_project(root, tmp_path)
    code, out = _cli("check", "--stack", "dev", "--root", str(tmp_path))
    assert code == 0, out


@pytest.mark.parametrize("name", CLI_VARIANTS)
def test_variant_fails_through_the_cli(name: str, root: Path, tmp_path: Path) -> None:
    variant = {v.name: v for v in VARIANTS}[name]
    _copy_project(root, tmp_path)
    with (tmp_path / "__main__.py").open("a", encoding="utf-8") as fh:
        fh.write("\n" + PRELUDE + variant.code + "\n")
    code, out = _cli("check", "--stack", "dev", "--root", str(tmp_path))
    assert code == 1, out
    assert any(f"[mandatory] {p}:" in out for p in variant.policies), out


# ---- `parent=`: no resource is trusted for where it sits in the tree ----


@pytest.mark.parametrize("variant", PARENTED_VARIANTS, ids=lambda v: v.name)
def test_parented_variant_fails_check(variant: Variant, root: Path, config: dict[str, Any]) -> None:
    result = run_with(root, config, variant.code)
    assert result.exit_code == 1, variant.name
    found = {v.policy for v in result.mandatory}
    assert found & variant.policies, f"{variant.name}: expected one of {sorted(variant.policies)}, got {sorted(found)}"


NO_CONFIG_SAMPLE = ("under-fleet-lambda-as-rotation-role", "under-agent-vault-jwt-login-copy",
                    "lookalike-fleet-component-trusts-foreign-account", "under-fleet-schedule-as-scheduler-role-to-raw-target")


def test_no_policy_config_the_program_passes(root: Path) -> None:
    """Engine parity: `pulumi preview --policy-pack policy` with no config; the pack reads the
    stack's settings from the fleet component (its `policyConfig` input)."""
    result = run_with(root, {}, None)
    assert result.exit_code == 0, [f"{v.policy}: {v.message}" for v in result.mandatory]


@pytest.mark.parametrize("name", NO_CONFIG_SAMPLE)
def test_no_policy_config_variants_still_fail(name: str, root: Path) -> None:
    variant = {v.name: v for v in PARENTED_VARIANTS}[name]
    result = run_with(root, {}, variant.code)
    found = {v.policy for v in result.mandatory}
    assert result.exit_code == 1 and found & variant.policies, (name, sorted(found))
