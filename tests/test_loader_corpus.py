"""Malformed fleet files: each is refused with exactly the problems its header declares.

Every file under tests/fleets/bad/ starts with `# expect: LINE: substring` lines. The loader must
report each of them (right line, message containing the substring) and nothing else, so a missing
check, a wrong line number and a spurious extra error all fail. The same corpus drives the CLI
checks and the error list in docs/fleet-format.md (regenerate with
`.venv/bin/python -m tests.test_loader_corpus --write-docs`).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentfleet.cli.main import main
from agentfleet.core.loader import SECRET_KEYS, FleetError, Problem, load_fleet
from agentfleet.core.model import (
    BUILTIN_CLASSIFICATIONS,
    NAME_RE,
    NAME_RULE,
    PROVIDER_ADAPTERS,
    ROTATION_STRATEGIES,
    Agent,
    ClassificationSpec,
    Credential,
    Defaults,
    FleetFile,
    GithubOidc,
    Network,
    Rotation,
    Runtime,
)

from tests.conftest import REPO as ROOT
BAD = ROOT / "tests" / "fleets" / "bad"
DOC = ROOT / "docs" / "fleet-format.md"
CORPUS = sorted(BAD.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+): (.+)$")

# Fake credentials planted in the corpus: no message and no CLI output may ever repeat them.
FAKE_SECRETS = (
    "AKIAIOSFODNN7EXAMPLE",  # pragma: allowlist secret
    "sk-live-4eC39HqLyjWDarjtT1zdp7dc",  # pragma: allowlist secret
    "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",  # pragma: allowlist secret
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "hunter2-correct-horse",
    "not-even-a-real-one",
    "do-not-paste-keys-here",
)

# What the issue requires the loader to reject -> the corpus file(s) proving it.
COVERAGE: dict[str, tuple[str, ...]] = {
    "YAML syntax error": ("yaml-syntax-error", "yaml-tab-indent", "yaml-duplicate-key"),
    "unknown key (typo, with suggestion)": ("unknown-key-credentails", "unknown-key-top-level", "unknown-key-rotation-day", "unknown-key-no-suggestion"),
    "wrong type": ("wrong-type-paused", "wrong-type-days-string", "wrong-type-credentials-mapping", "wrong-type-agent-string", "wrong-type-credential-type", "wrong-type-store"),
    "duplicate agent names": ("duplicate-agent-names",),
    "duplicate credential names in one agent": ("duplicate-credential-names",),
    "naming rule: uppercase": ("name-uppercase",),
    "naming rule: `..`": ("name-double-dot", "name-dots-inside"),
    "naming rule: `/`": ("name-slash",),
    "naming rule: spaces": ("name-space",),
    "naming rule: too long / too short / edge dashes": ("name-too-long", "name-too-short-and-dashes"),
    "unknown classification": ("unknown-classification",),
    "rotation days above the class maximum": ("rotation-days-above-class-max",),
    "rotation days below 1": ("rotation-days-below-one",),
    "unknown rotation strategy": ("unknown-rotation-strategy",),
    "runtime with zero kinds": ("runtime-no-kind", "runtime-missing"),
    "runtime with several kinds": ("runtime-several-kinds",),
    "wildcard principal: service `*`": ("runtime-wildcard-service",),
    "wildcard principal: role_arns `*`": ("runtime-wildcard-role-arns",),
    "wildcard principal: account root": ("runtime-account-root",),
    "secret: a `value` field": ("secret-value-field",),
    "secret: a `secret` field": ("secret-field",),
    "secret: `sk-live-...` string": ("secret-sk-live-string",),
    "secret: `AKIA...` string": ("secret-akia-string",),
    "secret: PEM block": ("secret-pem-block",),
    "secret: credential-shaped key or name (masked)": ("secret-shaped-key-and-name",),
    "version missing": ("version-missing",),
    "version unsupported": ("version-unsupported", "version-string"),
    "empty fleet": ("empty-file", "empty-fleet-no-agents", "empty-fleet-agents-null", "credentials-empty"),
    "loosening a built-in class": ("loosen-builtin-class",),
    "github_oidc without ref": ("github-oidc-without-ref", "github-oidc-wildcard-ref"),
    "EKS pods as a plain service principal": ("runtime-pods-as-service",),
    "wildcard Kubernetes namespace": ("runtime-eks-wildcard-namespace",),
    "IRSA issuer written with its scheme": ("runtime-irsa-with-scheme",),
    "source_arn without a service": ("runtime-source-arn-without-service",),
    "keyless credential for a service without federation": ("keyless-unsupported-service",),
    "keyless credential with stores or rotation": ("keyless-with-stores-and-rotation",),
    "many problems in one run": ("many-problems",),
}


@dataclass(frozen=True)
class Expected:
    line: int
    text: str


def expectations(path: Path) -> list[Expected]:
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        m = EXPECT.match(raw)
        if m:
            out.append(Expected(int(m.group(1)), m.group(2)))
    return out


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(FleetError) as exc:
        load_fleet(path)
    return exc.value.problems


def unmatched(expected: list[Expected], problems: list[Problem]) -> tuple[list[Expected], list[Problem]]:
    """Pair each expectation with a distinct problem on its line containing its text."""
    left = list(problems)
    missing = []
    for e in expected:
        hit = next((p for p in left if p.line == e.line and e.text in p.message), None)
        if hit is None:
            missing.append(e)
        else:
            left.remove(hit)
    return missing, left


def test_corpus_is_large_enough_and_every_file_declares_its_problems() -> None:
    assert len(CORPUS) >= 30
    for path in CORPUS:
        assert expectations(path), f"{path.name} has no `# expect:` header"


def test_corpus_covers_every_rejection_the_issue_lists() -> None:
    names = {p.stem for p in CORPUS}
    for rule, files in COVERAGE.items():
        for f in files:
            assert f in names, f"{rule}: corpus file {f}.yaml is missing"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_bad_fleet_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = expectations(path)
    problems = problems_of(path)
    missing, extra = unmatched(expected, problems)
    shown = "\n".join(str(p) for p in problems)
    assert not missing, f"not reported: {missing}\ngot:\n{shown}"
    assert not extra, f"unexpected problems: {extra}\ngot:\n{shown}"
    assert len(problems) == len(expected)
    n_lines = max(1, len(path.read_text(encoding="utf-8").splitlines()))
    for p in problems:
        assert p.file == str(path)
        assert 1 <= p.line <= n_lines, f"line {p.line} is outside the file: {p}"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_problems_never_repeat_a_credential(path: Path) -> None:
    text = "\n".join(p.message for p in problems_of(path))
    for fake in FAKE_SECRETS:
        assert fake not in text


def test_many_problems_are_all_found_in_one_run() -> None:
    problems = problems_of(BAD / "many-problems.yaml")
    assert len(problems) == 17
    where = {p.message.split(":")[0].split("]")[0] for p in problems}
    assert {"classifications.internal", "agents[0", "agents[1", "agents[2"} <= where


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_cli_validate_prints_file_line_message_and_exits_1(path: Path) -> None:
    code, out, err = run_cli("validate", str(path))
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    problems = problems_of(path)
    # One `FILE:LINE: message` line per problem, in the loader's order, then one summary line.
    assert lines[:-1] == [f"{path}:{p.line}: {p.message}" for p in problems]
    assert lines[-1] == f"{path}: {len(problems)} problem(s); nothing was planned"
    shape = re.compile(rf"^{re.escape(str(path))}:(\d+): \S.*$")
    for line, e in zip(lines[:-1], problems):
        m = shape.match(line)
        assert m and int(m.group(1)) == e.line
    for fake in FAKE_SECRETS:
        assert fake not in err


def test_cli_validate_exit_codes_in_a_real_process(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentfleet", "validate", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )

    bad = run("tests/fleets/bad/many-problems.yaml")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert len([ln for ln in bad.stderr.splitlines() if re.match(r"^tests/fleets/bad/many-problems\.yaml:\d+: ", ln)]) == 17
    good = run("tests/project/agents.yaml")
    assert good.returncode == 0, good.stderr
    n = len(load_fleet(ROOT / "tests/project/agents.yaml").agents)
    assert good.stdout.startswith(f"tests/project/agents.yaml: ok ({n} agents")
    missing = run(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "cannot read fleet file" in missing.stderr


# ---- docs/fleet-format.md: sections generated from the code and this corpus ----

# (heading in the docs, corpus file, text of the problem shown; "" = its first problem)
DOC_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("YAML syntax error", "yaml-syntax-error", ""),
    ("Duplicate YAML key", "yaml-duplicate-key", ""),
    ("Empty file", "empty-file", ""),
    ("Top level is not a mapping", "not-a-mapping", ""),
    ("Missing `version`", "version-missing", ""),
    ("Unsupported `version`", "version-unsupported", ""),
    ("Empty fleet", "empty-fleet-no-agents", ""),
    ("Missing required key", "runtime-missing", ""),
    ("Unknown key (typo)", "unknown-key-credentails", "unknown key"),
    ("Unknown key (no close match)", "unknown-key-no-suggestion", ""),
    ("Wrong type", "wrong-type-paused", ""),
    ("Value not in the allowed set", "wrong-type-credential-type", ""),
    ("Empty list", "credentials-empty", ""),
    ("Invalid name", "name-uppercase", ""),
    ("Invalid classification name", "custom-class-bad", ""),
    ("Duplicate agent name", "duplicate-agent-names", ""),
    ("Duplicate credential name in one agent", "duplicate-credential-names", ""),
    ("Unknown classification", "unknown-classification", ""),
    ("Loosening a built-in classification", "loosen-builtin-class", ""),
    ("Rotation days above the class maximum", "rotation-days-above-class-max", ""),
    ("Rotation days below 1", "rotation-days-below-one", ""),
    ("Unknown rotation strategy", "unknown-rotation-strategy", ""),
    ("Runtime with zero or several kinds", "runtime-several-kinds", ""),
    ("Service principal that is not one (or a wildcard)", "runtime-wildcard-service", ""),
    ("Wildcard role ARN", "runtime-wildcard-role-arns", ""),
    ("Whole-account principal", "runtime-account-root", ""),
    ("GitHub OIDC without `ref` or `environment`", "github-oidc-without-ref", ""),
    ("Invalid value (pattern)", "github-oidc-wildcard-ref", ""),
    ("A `value` / `secret` field", "secret-value-field", ""),
    ("A credential-shaped string", "secret-sk-live-string", ""),
    ("A credential-shaped key", "secret-shaped-key-and-name", "a key looks like"),
    ("Malformed endpoint / VPC id or CIDR", "network-bad-ids", ""),
    ("A network scope that locks out the agent's own runtime", "network-locks-out-runtime", ""),
    ("`ssm` store with an automated rotation", "ssm-automated-rotation", ""),
)

GENERATED = re.compile(r"<!-- generated:(?P<name>[a-z-]+) -->\n(?P<body>.*?)<!-- /generated:(?P=name) -->", re.S)

_SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("", FleetFile),
    ("defaults.", Defaults),
    ("classifications.<name>.", ClassificationSpec),
    ("agents[].", Agent),
    ("agents[].runtime.", Runtime),
    ("agents[].runtime.github_oidc.", GithubOidc),
    ("agents[].network.", Network),
    ("agents[].credentials[].", Credential),
    ("agents[].credentials[].rotation.", Rotation),
)


def _type_words(tp: typing.Any, meta: list[typing.Any]) -> str:
    """A reader's description of a field type, read off the pydantic annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _type_words(inner[0], meta) if len(inner) == 1 else " or ".join(_type_words(a, []) for a in inner)
    if origin is typing.Annotated:
        extra = list(tp.__metadata__)
        for m in list(extra):
            if hasattr(m, "metadata"):  # a FieldInfo inside Annotated
                extra += list(m.metadata)
        return _type_words(args[0], meta + extra)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is tuple:
        return f"list of {_type_words(args[0], [])}" + (" (not empty)" if any(getattr(m, "min_length", None) == 1 for m in meta) else "")
    if origin is dict:
        return f"mapping of {_type_words(args[0], [])} to {_type_words(args[1], [])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    if tp is bool:
        return "`true` / `false`"
    if tp is int:
        ge = next((m.ge for m in meta if hasattr(m, "ge")), None)
        le = next((m.le for m in meta if hasattr(m, "le")), None)
        return f"integer {ge}–{le}" if ge is not None and le is not None else "integer"
    if tp is str:
        pattern = next((m.pattern for m in meta if getattr(m, "pattern", None)), None)
        if pattern == NAME_RE.pattern:
            return "name (naming rule)"
        return f"string matching `{pattern}`" if pattern else "string"
    if tp is typing.Any:
        return "fields of the agent (see Environments)"
    raise AssertionError(f"no words for {tp!r}")


def _default_words(field: typing.Any) -> str:
    if field.is_required():
        return "**required**"
    d = field.default
    if d is None:
        return "—"
    if isinstance(d, BaseModel):
        return "see below"
    if isinstance(d, (tuple, list)):
        return "[" + ", ".join(str(x) for x in d) + "]"
    if isinstance(d, dict):
        return "{}"
    if isinstance(d, bool):
        return str(d).lower()
    return f"`{d}`"


def render_fields() -> str:
    rows = ["| key | type | default in the file |", "|---|---|---|"]
    for prefix, model in _SECTIONS:
        for name, field in model.model_fields.items():
            key = field.alias or name
            words = _type_words(field.annotation, list(field.metadata)).replace("|", "\\|")
            rows.append(f"| `{prefix}{key}` | {words} | {_default_words(field)} |")
    return "\n".join(rows) + "\n"


def render_classifications() -> str:
    rows = ["| class | maximum rotation age (days) |", "|---|---|"]
    rows += [f"| `{k}` | {v} |" for k, v in BUILTIN_CLASSIFICATIONS.items()]
    return "\n".join(rows) + "\n"


def render_strategies() -> str:
    words = {
        "manual": "a human mints the key and writes it to its store; the stack only reminds (default)",
        "generated": "the project owns the value and generates a random one on each rotation",
    }
    lines = [f"- `{s}`: {words.get(s, 'provider adapter: mints and revokes keys through the provider admin API')}" for s in ROTATION_STRATEGIES]
    assert set(ROTATION_STRATEGIES) - set(words) == set(PROVIDER_ADAPTERS)
    return "\n".join(lines) + "\n"


def render_naming() -> str:
    return f"Rule: {NAME_RULE}. Pattern: `{NAME_RE.pattern}`.\n"


def render_secret_keys() -> str:
    return ", ".join(f"`{k}`" for k in sorted(SECRET_KEYS)) + "\n"


def render_errors() -> str:
    out = []
    for title, stem, needle in DOC_EXAMPLES:
        path = BAD / f"{stem}.yaml"
        problem = next(p for p in problems_of_plain(path) if needle in p.message)
        out.append(f"- **{title}** (`tests/fleets/bad/{stem}.yaml`)\n\n  ```\n  agents.yaml:{problem.line}: {problem.message}\n  ```\n")
    return "\n".join(out)


def problems_of_plain(path: Path) -> list[Problem]:
    try:
        load_fleet(path)
    except FleetError as exc:
        return exc.problems
    raise AssertionError(f"{path} loaded without error")


def render_sections() -> dict[str, str]:
    return {
        "fields": render_fields(),
        "classifications": render_classifications(),
        "strategies": render_strategies(),
        "naming": render_naming(),
        "secret-keys": render_secret_keys(),
        "errors": render_errors(),
    }


def rewrite_doc(text: str, sections: dict[str, str]) -> str:
    def fill(m: re.Match[str]) -> str:
        name = m.group("name")
        return f"<!-- generated:{name} -->\n{sections[name]}<!-- /generated:{name} -->"

    return GENERATED.sub(fill, text)


def test_docs_generated_sections_match_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = {m.group("name"): m.group("body") for m in GENERATED.finditer(text)}
    sections = render_sections()
    assert set(found) == set(sections)
    for name, body in sections.items():
        assert found[name] == body, f"docs/fleet-format.md section {name!r} is stale: run python -m tests.test_loader_corpus --write-docs"


def test_docs_examples_come_from_the_corpus() -> None:
    assert {stem for _, stem, _ in DOC_EXAMPLES} <= {p.stem for p in CORPUS}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-docs"]:
        raise SystemExit("usage: python -m tests.test_loader_corpus --write-docs")
    DOC.write_text(rewrite_doc(DOC.read_text(encoding="utf-8"), render_sections()), encoding="utf-8")
    print(f"updated {DOC.relative_to(ROOT)}")
