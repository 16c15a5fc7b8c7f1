"""The rules a fleet must also pass on one stack, which the file alone cannot decide.

- Every derived name is unique (`agentfleet.core.names`): the collision check.
- Every principal is in the stack's own account and partition, or in an account the stack
  lists in `agentfleet:trustedAccounts`: a prod stack must not trust dev's roles because the
  fleet file's `role_arns` were written for dev.
Each problem is (fleet-file line, message); the loader turns them into `FILE:LINE: message`.
"""

from __future__ import annotations

from agentfleet.core import names
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings, TRUSTED_ACCOUNTS_KEY


def _arn_account(arn: str) -> tuple[str, str] | None:
    """(partition, account) of an ARN, None when it is not one."""
    parts = arn.split(":")
    return (parts[1], parts[4]) if len(parts) >= 6 and parts[0] == "arn" else None


def principal_problem(arn: str, s: StackSettings, what: str) -> str | None:
    """Why `arn` may not be trusted on this stack, or None."""
    found = _arn_account(arn)
    if found is None:
        return None
    partition, account = found
    if partition != s.partition:
        return (f"{what} {arn} is in partition {partition!r}, but stack {s.stack!r} deploys to {s.partition!r}"
                f" ({s.aws_region}); name a role of that partition")
    if account != s.aws_account_id and account not in s.trusted_accounts:
        return (f"{what} {arn} is in account {account}, not stack {s.stack!r}'s account {s.aws_account_id};"
                f" give this environment its own role under `environments: {{{s.environment}: {{runtime: ...}}}}`, or"
                f" list the account in `agentfleet:{TRUSTED_ACCOUNTS_KEY}` of Pulumi.{s.stack}.yaml if it must be trusted")
    return None


def problems(fleet: Fleet, s: StackSettings, *, accounts: bool = True) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for a in fleet.agents if accounts else ():
        line = fleet.lines.get(f"{a.name}#runtime", fleet.lines.get(a.name, 0))
        for arn in a.runtime.role_arns or ():
            why = principal_problem(arn, s, f"agent {a.name!r}: runtime role")
            if why:
                out.append((line, why))
    for arn in s.admin_principals if accounts else ():
        why = principal_problem(arn, s, "admin principal (agentfleet:adminPrincipals)")
        if why:
            out.append((0, why))
    try:
        names.check_names(fleet, s)
    except names.NameCollision as exc:
        out.extend(exc.problems)
    return out
