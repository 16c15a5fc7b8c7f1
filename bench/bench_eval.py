"""Offline evaluation speed of the Pulumi program: components vs the same resources declared raw.

    .venv/bin/python bench/bench_eval.py                 # 10, 100, 1000 agents x 3 credentials
    .venv/bin/python bench/bench_eval.py --sizes 10 100 --reps 3

For each size it generates a fleet (stores and strategies rotate, so every resource kind
appears), then evaluates it under Pulumi's mock runtime (`components.mockrun`) twice per
repetition, interleaved: `components` runs the real `__main__.py` (AgentFleet -> EnvironmentBase
+ AgentAccess per agent); `raw` declares the very same custom resources with the same inputs flat
under the stack, with no component resources and no component outputs. Each evaluation runs in
a fresh interpreter (after a one-agent warm-up that loads the provider SDKs' lazy modules), so
peak RSS (ru_maxrss) belongs to that evaluation alone.

Reported: median wall and CPU seconds per mode (CPU time is the steadier figure on a shared
machine), growth t(1000)/t(100) (target <= 11: linear), component
overhead t(components)/t(raw) (target <= 1.15), peak RSS and the RSS the evaluation added on top
of the imports. Timings are informative only: no test asserts on them.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STORES = (("aws",), ("vault",), ("aws", "vault"))
STRATEGIES = ("manual", "generated", "openai")
CLASSES = ("internal", "confidential", "customer-data", "payments")


def fleet_yaml(n_agents: int, creds: int = 3) -> str:
    """A valid fleet of `n_agents` x `creds` credentials; stores, strategies, runtimes rotate."""
    lines = ["version: 1", "defaults: {owner: platform-team}", "agents:"]
    for i in range(n_agents):
        name = f"agent-{i:05d}"
        runtime = (
            "{service: ecs-tasks.amazonaws.com}" if i % 2 == 0
            else f'{{role_arns: ["arn:aws:iam::123456789012:role/runner-{name}"]}}'
        )
        lines += [f"  - name: {name}", f"    owner: team-{i % 7}", f"    runtime: {runtime}", "    credentials:"]
        for j in range(creds):
            stores = ", ".join(STORES[(i + j) % 3])
            lines.append(
                f"      - {{name: cred-{j}, service: svc{j}, type: api_key, classification: {CLASSES[(i + j) % 4]},"
                f" rotation: {{strategy: {STRATEGIES[(i + 2 * j) % 3]}}}, stores: [{stores}]}}"
            )
    return "\n".join(lines) + "\n"


def raw_program(fleet_path: Path) -> None:
    """The baseline: the components' custom resources, same inputs, declared flat (no components)."""
    import pulumi
    import pulumi_aws as aws
    import pulumi_random as random
    import pulumi_vault as vault

    from components import iam, naming, plan
    from components.agent_access import AWS_VALUE_IGNORED, GENERATED_LENGTH, VAULT_VALUE_IGNORED
    from components.loader import load_fleet
    from components.model import ResolvedAgent
    from components.providers import providers_from_config
    from components.settings import settings_from_config

    def config(key: str) -> str | None:
        ns, _, name = key.partition(":")
        return pulumi.Config(ns).get(name)

    s = settings_from_config(pulumi.get_stack(), config)
    fleet = load_fleet(fleet_path)
    plan.check_unique_names(s, fleet)
    p = providers_from_config(s)

    def inline_policy(agent: ResolvedAgent, key_arn: str) -> str:
        return iam.to_json(plan.agent_iam_policy(s, agent, key_arn))

    def o(provider: pulumi.ProviderResource, **kw: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=provider, **kw)

    key = aws.kms.Key("kms-key", description=naming.kms_key_description(s), enable_key_rotation=True,
                      deletion_window_in_days=30, policy=iam.to_json(plan.kms_key_policy(s)),
                      tags=naming.tags(s), opts=o(p.aws, protect=s.protect))
    aws.kms.Alias("kms-alias", name=naming.kms_alias(s), target_key_id=key.key_id, opts=o(p.aws))
    mount = vault.Mount("kv-mount", path=s.vault_mount, type="kv", options={"version": "2"},
                        description="agentfleet: per-agent credentials (KV v2)", opts=o(p.vault, protect=s.protect))
    auth = vault.AuthBackend("aws-auth", type="aws", path=s.vault_aws_auth_path,
                             description="agentfleet: agents log in with their IAM role",
                             opts=o(p.vault, protect=s.protect))
    for a in sorted(fleet.agents, key=lambda a: a.name):
        tags = naming.tags(s, agent=a.name, owner=a.owner)
        role = aws.iam.Role(naming.logical_agent(a.name, "role"), name=naming.role_name(s, a.name),
                            assume_role_policy=iam.to_json(plan.trust_policy(s, a)),
                            max_session_duration=s.max_session_seconds, tags=tags, opts=o(p.aws))
        aws.iam.RolePolicy(naming.logical_agent(a.name, "policy"), role=role.name, name=naming.INLINE_POLICY_NAME,
                           policy=key.arn.apply(functools.partial(inline_policy, a)), opts=o(p.aws))
        for c in a.credentials:
            stags = naming.tags(s, agent=a.name, owner=a.owner, classification=c.classification)
            initial = None
            if plan.has_generated_value(c.rotation_strategy):
                initial = random.RandomPassword(naming.logical_credential(a.name, c.name, "initial-value"),
                                                length=GENERATED_LENGTH, special=False, opts=o(p.random))
            if "aws" in c.stores:
                secret = aws.secretsmanager.Secret(
                    naming.logical_credential(a.name, c.name, "secret"), name=naming.secret_name(s, a.name, c.name),
                    description=f"{c.service} {c.type} of agent {a.name} ({c.classification})",
                    kms_key_id=key.arn, recovery_window_in_days=s.recovery_window_days, tags=stags,
                    opts=o(p.aws, protect=s.protect))
                aws.secretsmanager.SecretPolicy(
                    naming.logical_credential(a.name, c.name, "secret-policy"), secret_arn=secret.arn,
                    policy=iam.to_json(plan.secret_resource_policy(s, a, c)), block_public_policy=True, opts=o(p.aws))
                if initial is not None:
                    aws.secretsmanager.SecretVersion(
                        naming.logical_credential(a.name, c.name, "initial-version"), secret_id=secret.id,
                        secret_string=initial.result, version_stages=[naming.INITIAL_VERSION_STAGE],
                        opts=o(p.aws, ignore_changes=list(AWS_VALUE_IGNORED)))
            if "vault" in c.stores and initial is not None:
                vault.kv.SecretV2(
                    naming.logical_credential(a.name, c.name, "vault-initial-version"), mount=mount.path,
                    name=naming.vault_path(s, a.name, c.name),
                    data_json=pulumi.Output.json_dumps({naming.VAULT_VALUE_KEY: initial.result}), disable_read=True,
                    custom_metadata={"data": stags}, opts=o(p.vault, protect=s.protect, ignore_changes=list(VAULT_VALUE_IGNORED)))
        policy = vault.Policy(naming.logical_agent(a.name, "vault-policy"), name=naming.vault_policy_name(s, a.name),
                              policy=plan.vault_policy(s, a), opts=o(p.vault))
        vault.aws.AuthBackendRole(
            naming.logical_agent(a.name, "vault-login"), backend=auth.path, role=naming.vault_auth_role_name(s, a.name),
            auth_type="iam", bound_iam_principal_arns=[role.arn], resolve_aws_unique_ids=True,
            token_policies=[policy.name] if not a.paused else [], token_ttl=s.vault_token_ttl_seconds,
            token_max_ttl=2 * s.vault_token_ttl_seconds, opts=o(p.vault))


def worker(mode: str, fleet_path: Path) -> dict[str, Any]:
    """One evaluation in this (fresh) interpreter."""
    from components.mockrun import ProgramRun, run_program

    def evaluate(path: Path) -> ProgramRun:
        overrides = {"agentfleet:fleetFile": str(path)}
        if mode == "components":
            return run_program("dev", config_overrides=overrides)
        return run_program("dev", config_overrides=overrides, program=lambda: raw_program(path))

    # Warm-up on a one-agent fleet: the provider SDKs load their modules lazily on first use,
    # a constant cost that would otherwise flatter the growth ratio.
    warm = fleet_path.with_name(f"warmup-{mode}.yaml")
    warm.write_text(fleet_yaml(1), encoding="utf-8")
    evaluate(warm)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start = time.perf_counter(), time.process_time()
    run = evaluate(fleet_path)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode, "seconds": seconds, "cpu": cpu, "resources": len(run.resources),
        "custom": sum(r.custom for r in run.resources),
        "rss_peak_mib": rss_peak / 1024, "rss_added_mib": (rss_peak - rss_before) / 1024,
    }


def measure(mode: str, fleet_path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(fleet_path)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--creds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per size and mode (median reported)")
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "FLEET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return 0

    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"fleet-{n}.yaml"
            path.write_text(fleet_yaml(n, args.creds), encoding="utf-8")
            runs: dict[str, list[dict[str, Any]]] = {"raw": [], "components": []}
            for _ in range(args.reps):
                for mode in ("raw", "components"):  # interleaved: machine noise hits both alike
                    runs[mode].append(measure(mode, path))
            comp, raw = runs["components"], runs["raw"]
            if comp[0]["custom"] != raw[0]["custom"]:
                raise SystemExit(f"baseline declares {raw[0]['custom']} custom resources, components {comp[0]['custom']}")
            rows[n] = {
                "agents": n, "resources": comp[0]["resources"], "custom": comp[0]["custom"],
                "t_components": statistics.median(r["seconds"] for r in comp),
                "t_raw": statistics.median(r["seconds"] for r in raw),
                "cpu_components": statistics.median(r["cpu"] for r in comp),
                "cpu_raw": statistics.median(r["cpu"] for r in raw),
                "rss_components": max(r["rss_peak_mib"] for r in comp),
                "rss_raw": max(r["rss_peak_mib"] for r in raw),
                "rss_added_components": max(r["rss_added_mib"] for r in comp),
                "rss_added_raw": max(r["rss_added_mib"] for r in raw),
            }
            r = rows[n]
            print(
                f"{n:>5} agents  {r['resources']:>6} resources ({r['custom']} custom)  "
                f"wall: components {r['t_components']:6.2f}s raw {r['t_raw']:6.2f}s ({r['t_components'] / r['t_raw']:.2f}x)  "
                f"cpu: components {r['cpu_components']:6.2f}s raw {r['cpu_raw']:6.2f}s ({r['cpu_components'] / r['cpu_raw']:.2f}x)  "
                f"cpu ms/resource {1000 * r['cpu_components'] / r['resources']:.2f}  "
                f"peak RSS {r['rss_components']:.0f} MiB (raw {r['rss_raw']:.0f}; evaluation added "
                f"{r['rss_added_components']:.0f} / {r['rss_added_raw']:.0f})",
                flush=True,
            )
    sizes = sorted(rows)
    if len(sizes) >= 2:
        small, big = sizes[-2], sizes[-1]
        for mode in ("components", "raw"):
            wall = rows[big][f"t_{mode}"] / rows[small][f"t_{mode}"]
            cpu = rows[big][f"cpu_{mode}"] / rows[small][f"cpu_{mode}"]
            print(f"growth {mode}: t({big})/t({small}) = {wall:.2f} wall, {cpu:.2f} cpu (x{big / small:.0f} agents; target <= 11)")
    big = sizes[-1]
    r = rows[big]
    print(
        f"component overhead at {big} agents: {r['t_components'] / r['t_raw']:.3f}x wall, "
        f"{r['cpu_components'] / r['cpu_raw']:.3f}x cpu (target <= 1.15)"
    )
    print(json.dumps({"sizes": rows}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
