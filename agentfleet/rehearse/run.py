"""The rehearsal: apply the program to real local servers, validate with terraform, live a day.

    agentfleet rehearse [--stack local] [--fleet FILE]

1. moto_server and an OpenBao dev server start on free loopback ports (bounded, always stopped).
2. The real program runs under `ApplyMocks`: every resource goes through boto3/hvac to those
   servers (real IDs and ARNs come back); types it cannot apply are listed, never skipped.
3. terraform plan -refresh=false (validating first) (the image's binary and AWS provider mirror, offline)
   judge the recorded AWS resources with the provider's own schema and validators.
4. The day in the life (agentfleet/rehearse/day.py).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentfleet.core.loader import load_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan
from agentfleet.core.project import FLEET_FILE_KEY, stack_file
from agentfleet.core.settings import PROJECT, load_stack_settings
from agentfleet.rehearse import terraform
from agentfleet.rehearse.apply import APPLIED, DEFERRED, FAILED, LOCAL, UNSUPPORTED, UPDATED, ApplyMocks, Clients, Outcome
from agentfleet.rehearse.day import Day, Step
from agentfleet.rehearse.servers import local_servers
from agentfleet.runner.mockrun import run_program

AWS_SERVICES = ("iam", "kms", "secretsmanager", "sts", "s3", "cloudwatch", "logs", "sns", "cloudtrail", "lambda",
                "events", "scheduler")

SUBSTITUTIONS = (
    "Lambda code runs in-process (moto cannot run it without Docker), with the deployed function's own environment,"
    " its role (assumed through moto STS) and its schedule's event",
    "IAM and secret resource policies are judged by agentfleet/review/iam_eval.py on the documents read back from moto"
    " (moto evaluates no per-secret policy); Vault policies are enforced by OpenBao itself",
    "the rotation functions log in to Vault with a token carrying their own applied Vault policy (OpenBao has no AWS"
    " auth method); the provider's admin API is a loopback fake (OPENAI_ADMIN_BASE_URL points at it)",
    "reads name VersionStage=AWSCURRENT (AWS's default): moto 5.2.5 returns a stale version to a stage-less read after"
    " a rotation moved AWSCURRENT; rotation of a secret without a value is configured after put-values (moto crashes on it)",
)


@dataclass
class Rehearsal:
    stack: str
    fleet_path: Path
    outcomes: list[Outcome] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    terraform: terraform.TfResult | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        tf_ok = self.terraform is None or self.terraform.ok
        return (self.error is None and tf_ok and all(s.ok for s in self.steps)
                and not any(o.status == FAILED for o in self.outcomes))


def rehearse(project: Path, stack: str = "local", fleet_path: Path | None = None, *, with_terraform: bool = True) -> Rehearsal:
    started = time.monotonic()
    settings = load_stack_settings(stack_file(project, stack), stack)
    fleet_path = (fleet_path or project / "agents.yaml").resolve()
    fleet = load_fleet(fleet_path, settings)  # the fleet of this stack: its environment's overrides applied
    plan = build_plan(fleet, settings)
    result = Rehearsal(stack, fleet_path)
    workdir = Path(tempfile.mkdtemp(prefix="agentfleet-rehearsal-"))
    try:
        with local_servers(settings.aws_account_id, settings.aws_region) as srv:
            mark = time.monotonic()
            result.timings["servers"] = mark - started
            clients = Clients(srv)
            overrides: dict[str, Any] = {
                f"{PROJECT}:{FLEET_FILE_KEY}": str(fleet_path),
                "vault:address": srv.vault_address,
                "aws:endpoints": [{svc: srv.aws_endpoint for svc in AWS_SERVICES}],
            }
            mocks = ApplyMocks(clients)
            run = run_program(stack, root=project, config_overrides=overrides, mocks=mocks)
            result.outcomes = mocks.outcomes
            result.timings["apply"], mark = time.monotonic() - mark, time.monotonic()
            tf_thread = None
            if with_terraform:  # a subprocess: it runs while the day is lived
                def tf_step() -> None:
                    t0 = time.monotonic()
                    try:
                        result.terraform = terraform.validate(run.resources, settings, srv.aws_endpoint, workdir / "tf")
                    except Exception as exc:
                        result.terraform = terraform.TfResult(errors=[f"{type(exc).__name__}: {exc}"], stage_ok={"run": False})
                    result.timings["terraform (parallel)"] = time.monotonic() - t0

                tf_thread = threading.Thread(target=tf_step, name="rehearse-terraform")
                tf_thread.start()

            def rerun(new_fleet: Fleet, path: Path, m: ApplyMocks) -> None:
                run_program(stack, root=project, config_overrides={**overrides, f"{PROJECT}:{FLEET_FILE_KEY}": str(path)}, mocks=m)

            result.steps = Day(clients, fleet, settings, plan, mocks, rerun, fleet_path, workdir).run()
            result.outcomes = mocks.outcomes
            result.timings["day"] = time.monotonic() - mark
            if tf_thread is not None:
                tf_thread.join(timeout=terraform.TIMEOUT_S * 3)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:1500]}"
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        result.seconds = time.monotonic() - started
    return result


def report(r: Rehearsal) -> str:
    lines = [f"Rehearsal of stack `{r.stack}` with {r.fleet_path}: moto_server + OpenBao dev server on 127.0.0.1", ""]
    by_type: dict[str, Counter[str]] = {}
    for o in r.outcomes:
        if o.type.startswith("pulumi:providers:"):
            continue
        by_type.setdefault(o.type, Counter())[o.status] += 1
    if by_type:
        width = max(len(t) for t in by_type)
        lines.append(f"Resources applied to the servers ({sum(sum(c.values()) for c in by_type.values())} declared):")
        for t, c in sorted(by_type.items()):
            parts = ", ".join(f"{n} {st}" for st, n in sorted(c.items()))
            lines.append(f"  {t:<{width}}  {parts}")
        problems = [o for o in r.outcomes if o.status in (FAILED, UNSUPPORTED)]
        for o in problems:
            lines.append(f"  {o.status.upper()}: {o.type} {o.name}: {o.detail}")
        deferred = [o for o in r.outcomes if o.status == DEFERRED]
        for o in deferred:
            lines.append(f"  DEFERRED: {o.type} {o.name}: {o.detail}")
        lines.append(f"  ({APPLIED}: through boto3/hvac; {LOCAL}: generated here, as pulumi-random does; {UPDATED}: re-applied by an update)")
        lines.append("")
    if r.terraform is not None:
        lines.extend(r.terraform.report_lines())
        lines.append("")
    if r.steps:
        lines.append("A day in the life:")
        for s in r.steps:
            lines.append(f"  {'PASS' if s.ok else 'FAIL'}  {s.name}")
            lines.extend(f"        {d}" for d in s.details if d)
        lines.append("")
    if r.error:
        lines.append(f"ERROR: the rehearsal stopped: {r.error}")
        lines.append("")
    lines.append("What the rehearsal substitutes for AWS:")
    lines.extend(f"  - {s}" for s in SUBSTITUTIONS)
    lines.append("")
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())
    lines.append(f"{'PASSED' if r.ok else 'FAILED'} in {r.seconds:.1f} s ({phases})")
    return "\n".join(lines) + "\n"
