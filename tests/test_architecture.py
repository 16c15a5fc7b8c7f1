"""The layering rules of docs/architecture.md, enforced on the source tree.

- `agentfleet.core`, `agentfleet.review` and `agentfleet.rotation` import nothing from Pulumi,
  pulumi-policy or the provider SDKs (read from the source, so a lazy import inside a function
  counts too);
- no import cycle between the packages of `agentfleet`;
- `validate`, `plan`, `audit` and `diff` run without loading `pulumi_aws` (or any Pulumi module).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT, REPO

PKG = REPO / "agentfleet"
PULUMI_ROOTS = {"pulumi", "pulumi_aws", "pulumi_vault", "pulumi_random", "pulumi_policy"}
PULUMI_FREE = ("core", "review", "rotation", "workload", "operate")
# Which layer may import which (docs/architecture.md). Anything else is a violation.
ALLOWED = {
    "core": {"core", "rotation"},  # the core reads the rotation function's environment contract
    "review": {"core", "review"},
    "rotation": {"rotation"},
    "workload": {"workload"},  # runs inside agents: standard library only
    "components": {"core", "components", "rotation"},
    "policy": {"core", "policy"},
    "runner": {"core", "policy", "runner"},
    "operate": {"core", "rotation", "operate"},  # operator actions against real stores (put-values, emergency rotation)
    "rehearse": {"core", "review", "runner", "rotation", "operate", "rehearse"},
    "cli": {"core", "review", "runner", "cli", "policy", "components", "rotation", "operate", "rehearse"},
}


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute module names imported by a file (relative imports resolved), with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(REPO).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "agentfleet" and len(parts) > 1 else None


def _files(layer: str) -> list[Path]:
    folder = (REPO / "components") if layer == "components" else PKG / layer
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_layer_has_files() -> None:
    for layer in ALLOWED:
        assert _files(layer), layer


@pytest.mark.parametrize("layer", PULUMI_FREE)
def test_pulumi_free_layers_import_no_pulumi(layer: str) -> None:
    bad = [f"{p.relative_to(REPO)}:{line}: {mod}" for p in _files(layer) for mod, line in _imports(p)
           if mod.split(".")[0] in PULUMI_ROOTS]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_what_the_dependency_rule_allows(layer: str) -> None:
    bad = []
    for p in _files(layer):
        for mod, line in _imports(p):
            target = _layer(mod)
            if target is not None and target not in ALLOWED[layer]:
                bad.append(f"{p.relative_to(REPO)}:{line}: {layer} -> {mod}")
    assert not bad, "\n".join(bad)


def test_no_cycle_between_layers() -> None:
    edges: dict[str, set[str]] = {layer: set() for layer in ALLOWED}
    for layer in ALLOWED:
        for p in _files(layer):
            for mod, _ in _imports(p):
                target = _layer(mod)
                if target in edges and target != layer:
                    edges[layer].add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    cycles = [layer for layer in edges if reaches(layer, layer, {layer})]
    assert not cycles, f"import cycle through {cycles}: {edges}"


def test_the_dependency_rule_can_fail() -> None:
    """The checker sees a lazy import inside a function (so the tests above can fail)."""
    found = _imports(PKG / "cli" / "cmd_check.py")
    assert any(m == "agentfleet.runner" for m, _ in found)


def test_nothing_generic_is_packaged_top_level() -> None:
    """Only `agentfleet` is installed: no top-level `components`, `policy` or `rotation`."""
    import tomllib

    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["agentfleet", "agentfleet.*"]
    assert (PKG / "components").resolve() == (REPO / "components").resolve()


@pytest.mark.parametrize("verb", [
    ["validate", "agents.yaml"],
    ["plan", "agents.yaml", "--stack", "dev"],
    ["audit", "agents.yaml", "--stack", "dev"],
    ["diff", "agents.yaml", "agents.yaml", "--stack", "dev"],
    ["put-values", "agents.yaml", "--stack", "dev", "--values-from", "/dev/null"],
])
def test_review_verbs_load_no_pulumi_module(verb: list[str]) -> None:
    code = (
        "import sys\nfrom agentfleet.cli.main import main\n"
        f"rc = main({verb!r})\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(PULUMI_ROOTS)!r})\n"
        "print('LOADED', loaded)\nsys.exit(rc)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "LOADED []" in ran.stdout, ran.stdout[-500:]
