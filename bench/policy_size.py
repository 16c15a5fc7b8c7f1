"""Size of one agent's inline IAM policy, with and without a network scope and the `ssm` store.

    .venv/bin/python bench/policy_size.py

IAM allows 10,240 characters of inline policy per role (all inline policies together). The
network deny is one statement on `*` and the SSM KMS grant names the agent's folder, so a scope
adds a constant, and each `ssm` credential adds its two exact ARNs. Informative only: no test
asserts on these numbers (docs/operations.md quotes them).
"""

from __future__ import annotations

from agentfleet.core import iam_documents as iam
from agentfleet.core import plan
from agentfleet.core.loader import build_fleet
from agentfleet.core.settings import StackSettings

INLINE_MAX = 10_240
KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
NETWORK = {"vpc_endpoints": ["vpce-0abc1234def567890", "vpce-0abc1234def567891"], "source_cidrs": ["203.0.113.0/24"]}


def size(settings: StackSettings, credentials: int, stores: list[str], network: dict[str, list[str]] | None) -> int:
    agent: dict[str, object] = {
        "name": "agent-with-a-rather-long-name-shared-01", "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "credentials": [{"name": f"credential-{i:02d}", "service": "svc", "type": "api_key", "stores": stores}
                        for i in range(credentials)],
    }
    if network:
        agent["network"] = network
    resolved = build_fleet({"version": 1, "agents": [agent]}).agents[0]
    return len(iam.to_json(plan.agent_iam_policy(settings, resolved, KEY)))


def main() -> None:
    s = StackSettings(stack="dev", environment="dev", aws_region="us-east-1", aws_account_id="123456789012")
    print(f"{'credentials':>11} | {'aws':>6} | {'aws+ssm':>7} | {'aws, scoped':>11} | {'aws+ssm, scoped':>15}   (limit {INLINE_MAX})")
    for n in (1, 10, 20, 30, 40):
        cells = [size(s, n, st, net) for net in (None, NETWORK) for st in (["aws"], ["aws", "ssm"])]
        print(f"{n:>11} | {cells[0]:>6} | {cells[1]:>7} | {cells[2]:>11} | {cells[3]:>15}")


if __name__ == "__main__":
    main()
