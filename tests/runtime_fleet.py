"""A fleet using every runtime kind and a keyless credential, shared by the runtime tests."""

from __future__ import annotations

import copy
from typing import Any

from agentfleet.core.loader import build_fleet
from agentfleet.core.model import Fleet

ACCOUNT = "123456789012"
CLUSTER = "agents-prod"
IRSA_ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
FN_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:summarize"


def _cred(name: str = "search", service: str = "serpapi") -> dict[str, Any]:
    return {"name": name, "service": service, "type": "api_key", "stores": ["vault"]}


RUNTIMES: dict[str, dict[str, Any]] = {
    "pods": {"eks_pod_identity": {"cluster": CLUSTER, "namespace": "agents", "service_account": "pods"}},
    "pods-other-sa": {"eks_pod_identity": {"cluster": CLUSTER, "namespace": "agents", "service_account": "other"}},
    "pods-other-ns": {"eks_pod_identity": {"cluster": CLUSTER, "namespace": "batch", "service_account": "pods"}},
    "irsa": {"irsa": {"oidc_issuer": IRSA_ISSUER, "namespace": "agents", "service_account": "irsa"}},
    "ci": {"github_oidc": {"repository": "example-org/ci", "ref": "refs/heads/main"}},
    "ci-env": {"github_oidc": {"repository": "example-org/ci", "environment": "prod"}},
    "fn": {"service": "lambda.amazonaws.com", "source_arn": FN_ARN},
    "task": {"service": "ecs-tasks.amazonaws.com"},
    "runner": {"role_arns": [f"arn:aws:iam::{ACCOUNT}:role/runner"]},
}
PAUSED = "pods-other-ns"


def runtime_doc() -> dict[str, Any]:
    agents = []
    for name, rt in RUNTIMES.items():
        creds = [_cred(), _cred("bot", "slack")]
        if name == "task":
            creds.append({"name": "openai", "service": "openai", "type": "workload_identity"})
        agents.append({"name": name, "runtime": copy.deepcopy(rt), "credentials": creds, **({"paused": True} if name == PAUSED else {})})
    return {"version": 1, "defaults": {"owner": "platform"}, "agents": agents}


def runtime_fleet() -> Fleet:
    return build_fleet(runtime_doc(), "runtime-fleet")
