"""The AWS provider's own validators: the recorded AWS resources as Terraform JSON, validated and planned.

pulumi-aws is bridged from terraform-provider-aws, so the provider's schema, conflicts and
validators (name patterns, lengths, enums, JSON policies) are the ones `pulumi up` applies. The
image ships a `terraform` binary and a filesystem mirror of the AWS provider; this module writes
the resources (with the real IDs/ARNs the servers returned) as `main.tf.json`, then runs
`terraform init` (from the mirror only) and `plan -refresh=false` (which validates first) with credential
and account checks skipped and every endpoint on the loopback emulator, so nothing leaves the
machine. Types the provider does not know are reported as not validated; without terraform or
the mirror the step is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import AbstractSet, Any, Iterable

from agentfleet.core.settings import StackSettings

TIMEOUT_S = 180
MIRROR_CANDIDATES = ("/opt/tf-plugins", "~/.terraform.d/plugins", "/usr/share/terraform/plugins")

TYPE_NAMES = {"aws:cloudtrail/trail:Trail": "aws_cloudtrail",
              "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider"}
"""Type tokens whose Terraform name is not `aws_<module>_<snake class>`."""

RENAMES: dict[str, dict[str, str]] = {
    "aws_lambda_function": {"name": "function_name", "code": "filename"},
    "aws_lambda_permission": {"function": "function_name"},
    "aws_cloudwatch_metric_alarm": {"name": "alarm_name"},
    "aws_iam_openid_connect_provider": {"clientIdLists": "client_id_list", "thumbprintLists": "thumbprint_list"},
}
"""Pulumi property names that differ from the provider's (pulumi-aws renames a few)."""

MAP_PROPS = frozenset({"tags", "tagsAll", "variables", "dimensions"})
"""Properties whose keys are data (tag names, variable names): never re-cased."""

SKIP_PROPS = frozenset({"__defaults", "tagsAll"})

SERVICES = ("iam", "kms", "secretsmanager", "sts", "s3", "cloudwatch", "logs", "sns", "cloudtrail", "lambda",
            "scheduler", "events")


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def tf_type(token: str) -> str | None:
    """`aws:iam/rolePolicy:RolePolicy` -> `aws_iam_role_policy`; None for non-AWS types."""
    if not token.startswith("aws:"):
        return None
    if token in TYPE_NAMES:
        return TYPE_NAMES[token]
    module, cls = token.split(":")[1].split("/")[0], token.split(":")[2]
    return f"aws_{module}_{snake(cls)}"


def _value(key: str, v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        if set(v) == {"FileArchive"}:
            return v["FileArchive"]
        if key in MAP_PROPS:
            return {k: _value("", x) for k, x in v.items()}
        return {snake(k): _value(k, x) for k, x in v.items() if k not in SKIP_PROPS}
    if isinstance(v, list):
        return [_value(key, x) for x in v]
    return v


def resource_body(tftype: str, props: dict[str, Any]) -> dict[str, Any]:
    renames = RENAMES.get(tftype, {})
    out = {}
    for k, v in props.items():
        if k in SKIP_PROPS or v is None:
            continue
        out[renames.get(k, snake(k))] = _value(k, v)
    return out


def _label(name: str, used: set[str]) -> str:
    label = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not label[0].isalpha() and label[0] != "_":
        label = "r_" + label
    base, n = label, 1
    while label in used:
        n += 1
        label = f"{base}_{n}"
    used.add(label)
    return label


def find_mirror() -> Path | None:
    """The AWS provider in a filesystem mirror: the CLI config's `filesystem_mirror` path, or a known folder."""
    paths: list[str] = []
    cfg = os.environ.get("TF_CLI_CONFIG_FILE")
    if cfg and Path(cfg).is_file():
        paths += re.findall(r'filesystem_mirror\s*{[^}]*path\s*=\s*"([^"]+)"', Path(cfg).read_text(encoding="utf-8"))
    paths += list(MIRROR_CANDIDATES)
    for p in paths:
        root = Path(p).expanduser()
        if (root / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return root
    return None


def provider_version(mirror: Path) -> str | None:
    versions = sorted((mirror / "registry.terraform.io" / "hashicorp" / "aws").iterdir())
    return versions[-1].name if versions else None


@dataclass
class TfResult:
    skipped: str | None = None
    """Why the step did not run (no terraform, no mirror)."""
    version: str | None = None
    validated: dict[str, int] = field(default_factory=dict)
    not_validated: dict[str, str] = field(default_factory=dict)
    """Type token -> reason."""
    errors: list[str] = field(default_factory=list)
    stage_ok: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.skipped is not None or (not self.errors and all(self.stage_ok.values()))

    def report_lines(self) -> list[str]:
        if self.skipped:
            return [f"Terraform: SKIPPED: {self.skipped}"]
        head = f"Terraform (hashicorp/aws {self.version} from the local mirror, offline): " + ", ".join(
            f"{stage} {'ok' if ok else 'FAILED'}" for stage, ok in self.stage_ok.items())
        lines = [head, f"  validated {sum(self.validated.values())} resources of {len(self.validated)} types"]
        for t, why in sorted(self.not_validated.items()):
            lines.append(f"  NOT VALIDATED: {t}: {why}")
        lines.extend(f"  ERROR: {e}" for e in self.errors)
        return lines


def document(resources: Iterable[Any], s: StackSettings, endpoint: str, skip: AbstractSet[str] = frozenset()) -> tuple[dict[str, Any], dict[str, int]]:
    body: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    used: set[str] = set()
    for r in resources:
        t = tf_type(r.type) if r.custom else None
        if t is None or r.type in skip:
            continue
        body.setdefault(t, {})[_label(r.name, used)] = resource_body(t, dict(r.props))
        counts[r.type] = counts.get(r.type, 0) + 1
    provider = {
        "region": s.aws_region, "access_key": "rehearsal", "secret_key": "rehearsal",
        "skip_credentials_validation": True, "skip_requesting_account_id": True, "skip_metadata_api_check": True,
        "skip_region_validation": True, "s3_use_path_style": True, "endpoints": [{svc: endpoint for svc in SERVICES}],
    }
    doc = {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}},
           "provider": {"aws": provider}, "resource": body}
    return doc, counts


_UNKNOWN_TYPE = re.compile(r'The provider hashicorp/aws does not support resource type "([a-z0-9_]+)"')


def validate(resources: list[Any], s: StackSettings, endpoint: str, workdir: Path) -> TfResult:
    binary = shutil.which("terraform")
    if binary is None:
        return TfResult(skipped="no `terraform` on PATH")
    mirror = find_mirror()
    if mirror is None:
        return TfResult(skipped="no filesystem mirror of hashicorp/aws (TF_CLI_CONFIG_FILE or /opt/tf-plugins): terraform would need the internet")
    res = TfResult(version=provider_version(mirror))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cli.tfrc").write_text(
        'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
        '  direct { exclude = ["registry.terraform.io/hashicorp/aws"] }\n}\n' % mirror, encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "TF_IN_AUTOMATION": "1",
           "TF_CLI_CONFIG_FILE": str(workdir / "cli.tfrc"), "CHECKPOINT_DISABLE": "1",
           "TF_DATA_DIR": str(workdir / ".terraform")}

    def tf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)

    skip: set[str] = set()
    by_tf = {tf_type(r.type): r.type for r in resources if r.custom and tf_type(r.type)}
    init_done = False
    for attempt in range(3):  # a plan validates first; drop the types the provider does not know, plan the rest
        doc, counts = document(resources, s, endpoint, skip)
        (workdir / "main.tf.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
        if not init_done:
            init = tf("init", "-input=false", "-no-color", "-backend=false")
            res.stage_ok["init"] = init_done = init.returncode == 0
            if not init_done:
                res.errors.append("terraform init: " + " ".join(init.stderr.split())[:600])
                return res
        plan = tf("plan", "-refresh=false", "-input=false", "-no-color", "-lock=false")
        unknown = {by_tf[m] for m in _UNKNOWN_TYPE.findall(" ".join(plan.stderr.split())) if m in by_tf}
        if unknown and attempt < 2:
            for t in unknown:
                res.not_validated[t] = f"hashicorp/aws {res.version} does not know {tf_type(t)} (pulumi-aws 7 tracks provider v6)"
            skip |= unknown
            continue
        break
    res.validated = counts
    res.stage_ok["validate+plan"] = plan.returncode == 0
    if plan.returncode != 0:
        errs = [b.strip() for b in plan.stderr.split("Error: ")[1:]]
        res.errors.extend(" ".join(e.split())[:400] for e in errs[:30])
    return res
