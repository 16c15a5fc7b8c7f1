"""A scripted day in the life of the fleet, against the servers the program was applied to.

Each step is a `Step` (name, pass/fail, details). Where moto cannot judge (it evaluates no
per-secret IAM or resource policy), access decisions come from the project's IAM evaluator
(agentfleet/review/iam_eval.py) on the documents read back from the servers; OpenBao enforces
Vault policies for real. Rotations run the rotation handler in-process with each deployed
function's own environment (read back from moto), its own role (assumed through moto STS) and
its own Vault policy, against a loopback fake of the provider.
"""

from __future__ import annotations

import io
import json
import secrets
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import hvac.exceptions

from agentfleet.core import naming
from agentfleet.core import rotation_plan as rp
from agentfleet.core.model import Fleet, ResolvedAgent
from agentfleet.core.plan import vault_token_policies
from agentfleet.core.settings import StackSettings
from agentfleet.operate import emergency
from agentfleet.operate import values as v
from agentfleet.rehearse.apply import ApplyMocks, Clients
from agentfleet.rehearse.fake_provider import PROJECT, FakeOpenAI
from agentfleet.review.iam_eval import Request, evaluate
from agentfleet.rotation import config as handler_config
from agentfleet.rotation import credential
from agentfleet.rotation import handler
from agentfleet.rotation.vault_sync import TokenLogin, VaultClient, VaultWriter

GET = "secretsmanager:GetSecretValue"


@dataclass
class Step:
    name: str
    ok: bool = True
    details: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.ok = False
        self.details.append("FAIL " + text)

    def note(self, text: str) -> None:
        self.details.append(text)

    def expect(self, cond: bool, text: str) -> None:
        if not cond:
            self.fail(text)


@dataclass
class AgentView:
    name: str
    role_arn: str
    paused: bool
    creds: dict[str, str]
    """STS credentials of the assumed role (moto)."""
    vault_token: str | None = None


class InProcessLambda:
    """A Lambda client whose `invoke` runs the rotation handler here, with the function's own Deps."""

    def __init__(self, deps_for: Callable[[str], handler.Deps]):
        self.deps_for = deps_for

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        try:
            body: Any = handler.handle(json.loads(Payload), self.deps_for(FunctionName))
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}
        except Exception as exc:
            doc = {"errorType": type(exc).__name__, "errorMessage": str(exc)[:500]}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(doc).encode())}


class Day:
    def __init__(self, clients: Clients, fleet: Fleet, settings: StackSettings, plan: dict[str, Any], mocks: ApplyMocks,
                 rerun: Callable[[Fleet, Path, ApplyMocks], None], fleet_path: Path, workdir: Path):
        self.c, self.fleet, self.s, self.plan, self.mocks = clients, fleet, settings, plan, mocks
        self.rerun, self.fleet_path, self.workdir = rerun, fleet_path, workdir
        self.steps: list[Step] = []
        self.fake = FakeOpenAI().start()
        self.sm = clients.aws("secretsmanager")
        self.iam = clients.aws("iam")
        self.agents: dict[str, AgentView] = {}
        self.now = datetime.now(timezone.utc)
        self._docs: dict[str, list[dict[str, Any]]] = {}
        self._functions: dict[str, dict[str, Any]] | None = None
        self.log_lines: list[str] = []

    # ---- helpers ----

    def step(self, name: str) -> Step:
        st = Step(name)
        self.steps.append(st)
        return st

    def guarded(self, name: str, fn: Callable[[Step], None]) -> Step:
        st = self.step(name)
        try:
            fn(st)
        except Exception as exc:
            st.fail(f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}")
            st.note(traceback.format_exc(limit=3).splitlines()[-1][:300])
        return st

    def identity_docs(self, role: str) -> list[dict[str, Any]]:
        """The role's inline policies as applied (cached until an update re-applies them)."""
        if role in self._docs:
            return self._docs[role]
        docs = []
        for pname in self.iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = self.iam.get_role_policy(RoleName=role, PolicyName=pname)["PolicyDocument"]
            docs.append(json.loads(doc) if isinstance(doc, str) else doc)
        self._docs[role] = docs
        return docs

    def secrets(self) -> list[dict[str, Any]]:
        """Every secret of the environment as applied: name, ARN, resource policy, owner agent."""
        out = []
        paginator = self.sm.get_paginator("list_secrets")
        for page in paginator.paginate():
            for sec in page["SecretList"]:
                if not sec["Name"].startswith(naming.secret_env_prefix(self.s)):
                    continue
                pol = self.sm.get_resource_policy(SecretId=sec["ARN"]).get("ResourcePolicy")
                owner = sec["Name"][len(naming.secret_env_prefix(self.s)):].split("/", 1)[0]
                out.append({"name": sec["Name"], "arn": sec["ARN"], "policy": json.loads(pol) if pol else None, "owner": owner})
        return sorted(out, key=lambda x: x["name"])

    def origin(self, agent: str) -> dict[str, str]:
        """The request context of a call from the agent's own declared network (none: anywhere)."""
        a = next((x for x in self.fleet.agents if x.name == agent), None)
        net = a.network if a is not None else None
        if net is None:
            return {}
        if net.vpc_endpoints:
            return {"aws:SourceVpce": str(net.vpc_endpoints[0]), "aws:SourceVpc": str(net.vpcs[0]) if net.vpcs else "vpc-rehearsal"}
        if net.vpcs:
            return {"aws:SourceVpc": str(net.vpcs[0]), "aws:SourceVpce": "vpce-rehearsal"}
        import ipaddress

        return {"aws:SourceIp": str(next(ipaddress.ip_network(str(net.source_cidrs[0]), strict=False).hosts()))}

    def may_read(self, role_arn: str, secret: dict[str, Any], agent: str = "", origin: dict[str, str] | None = None) -> bool:
        docs = self.identity_docs(role_arn.split(":role/")[-1])
        ctx = {"aws:PrincipalArn": role_arn, **(self.origin(agent) if origin is None else origin)}
        ident = evaluate(docs, Request(GET, secret["arn"], ctx)) if docs else "ImplicitDeny"
        res = evaluate(secret["policy"], Request(GET, secret["arn"], ctx, {"AWS": role_arn})) \
            if secret["policy"] else "ImplicitDeny"
        return ident == "Allow" and res != "Deny"

    def parameters(self) -> list[dict[str, str]]:
        ssm = self.c.aws("ssm")
        prefix = f"/{naming.secret_env_prefix(self.s)}"
        out = []
        for page in ssm.get_paginator("describe_parameters").paginate():
            for p in page["Parameters"]:
                if p["Name"].startswith(prefix):
                    arn = ssm.get_parameter(Name=p["Name"])["Parameter"]["ARN"]
                    out.append({"name": p["Name"], "arn": arn, "owner": p["Name"][len(prefix):].split("/", 1)[0]})
        return sorted(out, key=lambda x: x["name"])

    def sm_as(self, creds: dict[str, str], recorder: list[tuple[str, str]] | None = None) -> Any:
        client = self.c.aws("secretsmanager", aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
        if recorder is not None:
            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                recorder.append((model.name, str(params.get("SecretId", "*"))))
            client.meta.events.register("provide-client-params.secrets-manager", record)
        return client

    def assume(self, role_arn: str, session: str) -> dict[str, str]:
        creds: dict[str, str] = self.c.aws("sts").assume_role(RoleArn=role_arn, RoleSessionName=session[:64])["Credentials"]
        return creds

    def vault_token(self, policies: list[str]) -> str:
        root = self.c.vault()
        token: str = root.auth.token.create(policies=policies or ["default"], no_default_policy=True, ttl="1h")["auth"]["client_token"]
        return token

    def vault_read(self, token: str, mount: str, path: str) -> str:
        try:
            self.c.vault(token).secrets.kv.v2.read_secret_version(mount_point=mount, path=path, raise_on_deleted_version=True)
            return "ok"
        except hvac.exceptions.Forbidden:
            return "forbidden"
        except hvac.exceptions.InvalidPath:
            return "missing"

    def vault_paths(self) -> Iterator[tuple[str, str, str]]:
        for a in self.plan["agents"]:
            for c in a["credentials"]:
                if c["vault_path"]:
                    yield a["name"], c["vault_mount"], c["vault_path"]

    # ---- the steps ----

    def run(self) -> list[Step]:
        import logging

        from agentfleet.rotation.logs import LOGGER_NAME

        day = self

        class Capture(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                day.log_lines.append(record.getMessage())

        logger = logging.getLogger(LOGGER_NAME)
        saved = logger.handlers[:]
        logger.handlers = [Capture()]
        try:
            self.guarded("every agent assumes its own role, and no other agent's runtime can", self.assume_roles)
            self.guarded("each agent may read only its own secrets (IAM evaluator on the applied documents)", self.isolation)
            self.guarded("the operator writes the external values (put-values), rotation is configured", self.write_values)
            self.guarded("each agent reads only its own Vault paths (OpenBao enforces)", self.vault_isolation)
            self.guarded("each agent reads its own secret through its assumed role", self.agents_read)
            self.guarded("rotation runs through the deployed function's own configuration", self.rotate)
            self.guarded("old keys are revoked only after the grace period (the sweep schedule's own event)", self.grace)
            self.guarded("a pause cuts the agent's access while the others keep theirs", self.pause)
            self.guarded("an emergency rotation revokes the old key at once", self.emergency)
            self.guarded("no credential value reached a log line of the rotation functions", self.logs_clean)
        finally:
            logger.handlers = saved
            self.fake.stop()
        return self.steps

    def logs_clean(self, st: Step) -> None:
        known = {str(c.get("api_key")) for c in getattr(self, "values", {}).values()}
        known |= {str(after.get("api_key")) for _, after in getattr(self, "rotated", {}).values()}
        known |= {k["value"] for k in self.fake.keys.values()} | {self.fake.admin_key}
        text = "\n".join(self.log_lines)
        leaked = sorted(k for k in known if k and k != "None" and k in text)
        st.expect(not leaked, f"{len(leaked)} value(s) found in the functions' log lines")
        st.note(f"{len(self.log_lines)} log lines checked against {len(known)} values (initial, rotated, minted, admin key)")
        events = sorted({json.loads(line).get("event", "?") for line in self.log_lines if line.startswith("{")})
        st.note("events: " + ", ".join(events))
        for line in self.log_lines:
            if line.startswith("{") and json.loads(line).get("event") in ("vault_sync_failed", "revoke_failed", "rotation_failed"):
                st.note("failure: " + line[:400])

    def _runtime_request(self, a: ResolvedAgent, role_arn: str) -> Request:
        rt = a.runtime
        if rt.kind == "service":
            # a service assumes the role on behalf of a resource in this account (confused-deputy guard)
            return Request("sts:AssumeRole", role_arn, {"aws:SourceAccount": self.s.aws_account_id},
                           principal={"Service": str(rt.service)})
        if rt.kind == "role_arns":
            return Request("sts:AssumeRole", role_arn, principal={"AWS": list(rt.role_arns or [])[0]})
        gh = rt.github_oidc
        assert gh is not None
        sub = f"repo:{gh.repository}:" + (f"ref:{gh.ref}" if gh.ref else f"environment:{gh.environment}")
        provider = f"arn:{self.s.partition}:iam::{self.s.aws_account_id}:oidc-provider/token.actions.githubusercontent.com"
        return Request("sts:AssumeRoleWithWebIdentity", role_arn, principal={"Federated": provider}, context={
            "token.actions.githubusercontent.com:sub": sub, "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"})

    def assume_roles(self, st: Step) -> None:
        for a in self.plan["agents"]:
            role = self.iam.get_role(RoleName=a["iam_role_name"])["Role"]
            st.expect(role["Arn"] == a["iam_role_arn"], f"{a['name']}: applied role ARN {role['Arn']} != computed {a['iam_role_arn']}")
            trust = role["AssumeRolePolicyDocument"]
            trust = json.loads(trust) if isinstance(trust, str) else trust
            me = self.fleet.agent(a["name"])
            st.expect(evaluate(trust, self._runtime_request(me, role["Arn"])) == "Allow", f"{a['name']}: its own runtime may not assume its role")
            for other in self.fleet.agents:
                req = self._runtime_request(other, role["Arn"])
                if other.name != me.name and req != self._runtime_request(me, role["Arn"]):
                    st.expect(evaluate(trust, req) != "Allow", f"{a['name']}: agent {other.name}'s runtime may assume its role")
            creds = self.assume(role["Arn"], f"rehearsal-{a['name']}")
            self.agents[a["name"]] = AgentView(a["name"], role["Arn"], a["paused"], creds)
        st.note(f"{len(self.agents)} roles assumed through STS; trust policies judged for every agent's runtime")

    def _matrix(self, st: Step, paused: set[str]) -> None:
        secrets_ = self.secrets()
        allowed = 0
        for name, ag in sorted(self.agents.items()):
            for sec in secrets_:
                want = sec["owner"] == name and name not in paused
                got = self.may_read(ag.role_arn, sec, name)
                allowed += got
                st.expect(got == want, f"{name} {'may' if got else 'may not'} read {sec['name']}")
        st.note(f"{len(self.agents)} agents x {len(secrets_)} secrets: {allowed} reads allowed, all by their owner"
                + (f"; paused: {', '.join(sorted(paused))}" if paused else ""))
        params = self.parameters()
        if params:
            allowed = 0
            for name, ag in sorted(self.agents.items()):
                docs = self.identity_docs(ag.role_arn.split(":role/")[-1])
                for p in params:
                    want = p["owner"] == name and name not in paused
                    got = bool(docs) and evaluate(docs, Request("ssm:GetParameter", p["arn"], {"aws:PrincipalArn": ag.role_arn, **self.origin(name)})) == "Allow"
                    allowed += got
                    st.expect(got == want, f"{name} {'may' if got else 'may not'} read parameter {p['name']}")
            st.note(f"{len(self.agents)} agents x {len(params)} SSM parameters: {allowed} reads allowed, all by their owner")

    def isolation(self, st: Step) -> None:
        self._matrix(st, {a for a, v_ in self.agents.items() if v_.paused})
        elsewhere = {"aws:SourceIp": "198.51.100.7", "aws:SourceVpc": "vpc-0elsewhere", "aws:SourceVpce": "vpce-0elsewhere"}
        scoped = [n for n in self.agents if self.origin(n)]
        for sec in self.secrets():
            if sec["owner"] in scoped:
                st.expect(not self.may_read(self.agents[sec["owner"]].role_arn, sec, sec["owner"], elsewhere),
                          f"{sec['owner']} may read {sec['name']} from outside its declared network")
        if scoped:
            st.note(f"network-scoped agents ({', '.join(sorted(scoped))}): their own reads from another network are denied")
        key = self.c.aws("kms").describe_key(KeyId=naming.kms_alias(self.s))["KeyMetadata"]["Arn"]
        applied = self.secrets()
        for a in self.plan["agents"]:
            own = [x["arn"] for x in applied if x["owner"] == a["name"]]
            others = [x["arn"] for x in applied if x["owner"] != a["name"]]
            if a["paused"] or not own:
                continue
            here = {"aws:PrincipalArn": self.agents[a["name"]].role_arn, **self.origin(a["name"])}
            # Secrets Manager decrypts with the secret's ARN as encryption context: the grant names only the agent's own.
            via = {"kms:ViaService": f"secretsmanager.{self.s.aws_region}.amazonaws.com", **here,
                   "kms:EncryptionContext:SecretARN": own[0]}
            docs = self.identity_docs(a["iam_role_name"])
            st.expect(evaluate(docs, Request("kms:Decrypt", key, via)) == "Allow", f"{a['name']}: cannot decrypt via Secrets Manager")
            st.expect(evaluate(docs, Request("kms:Decrypt", key, here)) != "Allow", f"{a['name']}: may decrypt directly, not only via Secrets Manager")
            for arn in others[:3]:
                ctx = {**via, "kms:EncryptionContext:SecretARN": arn}
                st.expect(evaluate(docs, Request("kms:Decrypt", key, ctx)) != "Allow", f"{a['name']}: may decrypt another agent's secret {arn}")

    def write_values(self, st: Step) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        targets = v.value_targets(self.plan)
        clients = v.Clients({"aws": lambda: self.sm, "vault": lambda: self.c.vault(), "ssm": lambda: self.c.aws("ssm")})
        for t in targets:
            raw = json.dumps(self.fake.mint_initial()) if t.strategy == "openai" else "rehearsal-" + secrets.token_hex(16)
            cred, _ = v.shape_value(t.strategy, raw, t.plan.get("fields"))
            v.write_value(t, cred, clients)
            self.values[t.key] = cred
        st.note(f"{len(targets)} external value(s) written and read back in " +
                ", ".join(sorted({s_ for t in targets for s_ in t.stores})) + " through agentfleet.operate.values")
        admins = set()
        for f in self.functions().values():
            sid = f["env"].get(handler_config.ENV_OPENAI_ADMIN_SECRET_ID)
            if sid and sid not in admins:
                admins.add(sid)
                self.sm.create_secret(Name=sid, SecretString=json.dumps({"admin_key": self.fake.admin_key, "project_id": PROJECT}))
        if admins:
            st.note(f"provider admin secret(s) created by the operator: {', '.join(sorted(admins))}")
        for o in self.mocks.apply_deferred():
            st.expect(o.status == "applied", f"{o.type} {o.name}: {o.detail}")
            st.note(f"{o.name}: {o.detail}" if o.status == "applied" else "")

    def functions(self) -> dict[str, dict[str, Any]]:
        if self._functions is not None:
            return self._functions
        lam = self.c.aws("lambda")
        out = {}
        for page in lam.get_paginator("list_functions").paginate():
            for f in page["Functions"]:
                env = (f.get("Environment") or {}).get("Variables") or {}
                out[f["FunctionName"]] = {"arn": f["FunctionArn"], "role": f["Role"], "env": dict(env)}
        self._functions = out
        return out

    def vault_isolation(self, st: Step) -> None:
        paths = list(self.vault_paths())
        for a in self.plan["agents"]:
            ag = self.agents[a["name"]]
            ag.vault_token = self.vault_token([a["vault_policy_name"]])
            for owner, mount, path in paths:
                got = self.vault_read(ag.vault_token, mount, path)
                want = "ok" if owner == a["name"] and not a["paused"] else "forbidden"
                st.expect(got == want, f"{a['name']} reading {mount}/{path}: {got}, expected {want}")
        st.note(f"{len(self.agents)} agents x {len(paths)} Vault paths read with tokens carrying each agent's applied policy")

    def agents_read(self, st: Step) -> None:
        for a in self.plan["agents"]:
            client = self.sm_as(self.agents[a["name"]].creds)
            for c in a["credentials"]:
                key = f"{a['name']}/{c['name']}"
                if not c["secret_name"] or key not in self.values:
                    continue
                got = self._current(c["secret_name"], client)
                st.expect(got == self.values[key], f"{key}: the agent read something else than the operator wrote")
        st.note("moto serves the read (it does not judge it); the decision was the evaluator's step above")

    # ---- rotation ----

    def deps(self, function_name: str, *, clock: Callable[[], datetime] | None = None,
             recorder: list[tuple[str, str]] | None = None) -> handler.Deps:
        f = self.functions()[function_name]
        env = dict(f["env"])
        if handler_config.ENV_OPENAI_ADMIN_SECRET_ID in env:
            env[handler_config.ENV_OPENAI_BASE_URL] = self.fake.base_url
        client = self.sm_as(self.assume(f["role"], f"rehearsal-{function_name}"), recorder)
        vault_role = env.get(handler_config.ENV_VAULT_ROLE)
        token = self.vault_token([vault_role]) if vault_role else None

        def vault_factory(cfg: handler_config.Config) -> VaultWriter | None:
            if (not cfg.vault_map and cfg.vault_layout is None) or token is None:
                return None
            return VaultWriter(VaultClient(self.c.servers.vault_address, timeout=cfg.http_timeout_seconds), TokenLogin(token))

        return handler.Deps(client=client, config=handler_config.load_config(env), clock=clock or handler.utcnow,
                            vault_factory=vault_factory)

    def automated(self) -> list[rp.EmergencyRotation]:
        out = []
        for a in self.fleet.agents:
            for c in a.credentials:
                if rp.is_automatic(c):
                    out.append(rp.emergency_rotation(self.s, self.fleet, a.name, c.name))
        return out

    def _current(self, secret: str, client: Any = None) -> dict[str, Any]:
        """AWSCURRENT, asked for by name: moto 5.2.5 answers a stage-less read with a stale version
        after UpdateSecretVersionStage (AWS defaults to AWSCURRENT, so this is the same read there)."""
        raw = (client or self.sm).get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"]
        return credential.parse(raw)

    def _tag_context(self, tags: list[dict[str, str]] | dict[str, str]) -> dict[str, str]:
        items = tags.items() if isinstance(tags, dict) else ((t["Key"], t["Value"]) for t in tags)
        return {f"aws:ResourceTag/{k}": v for k, v in items}

    def _check_calls(self, st: Step, function: str, calls: list[tuple[str, str]]) -> None:
        f = self.functions()[function]
        docs = self.identity_docs(f["role"].split(":role/")[-1])
        arns = {s_["name"]: s_ for s_ in self.secrets()}
        for op, sid in sorted(set(calls)):
            action = f"secretsmanager:{op}"
            sec = arns.get(sid) or next((x for x in arns.values() if x["arn"] == sid), None)
            resource = sec["arn"] if sec else "*"
            ctx = self._tag_context(self.sm.describe_secret(SecretId=sec["arn"]).get("Tags", [])) if sec else {}
            ok = evaluate(docs, Request(action, resource, ctx)) == "Allow"
            if sec and sec["policy"] and op == "GetSecretValue":
                ok = ok and evaluate(sec["policy"], Request(action, resource, {"aws:PrincipalArn": f["role"]}, {"AWS": f["role"]})) != "Deny"
            st.expect(ok, f"{function} called {op} on {sid}, which its applied policies do not allow")
        st.note(f"{function}: {len(set(calls))} distinct Secrets Manager calls, each allowed by its role's applied policies")

    def rotate(self, st: Step) -> None:
        self.rotated: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        plans = self.automated()
        if not plans:
            st.note("no automatically rotated credential in this fleet")
            return
        for p in plans:
            before = self._current(p.secret_name)
            calls: list[tuple[str, str]] = []
            result = handler.handle({"Action": "rotateNow", "SecretId": p.secret_name}, self.deps(p.function_name, recorder=calls))
            after = self._current(p.secret_name)
            st.expect(result.get("status") == "rotated", f"{p.secret_name}: {result}")
            st.expect(after.get("api_key") != before.get("api_key"), f"{p.secret_name}: AWSCURRENT did not change")
            if p.vault:
                st.expect(result.get("vault") == "in_sync", f"{p.secret_name}: Vault copy {result.get('vault')}")
            if after.get("strategy") == "openai" or "key_id" in before:
                st.expect(self.fake.works(after.get("api_key")), f"{p.secret_name}: the new key does not work at the provider")
                st.expect(self.fake.works(before.get("api_key")), f"{p.secret_name}: the old key was revoked before the grace period")
            self._check_calls(st, p.function_name, calls)
            self.rotated[p.secret_name] = (before, after)
            st.note(f"{p.agent}/{p.credential} rotated by {p.function_name}" + (f"; Vault {p.vault} rewritten" if p.vault else ""))
        # the agent reads the new value, in both stores
        for p in plans:
            ag = self.agents[p.agent]
            got = self._current(p.secret_name, self.sm_as(ag.creds))
            st.expect(got == self.rotated[p.secret_name][1], f"{p.agent}: reads a stale {p.credential} from Secrets Manager")
            if p.vault and ag.vault_token:
                mount, path = p.vault.split("/", 1)
                doc = self.c.vault(ag.vault_token).secrets.kv.v2.read_secret_version(mount_point=mount, path=path, raise_on_deleted_version=True)
                st.expect(doc["data"]["data"].get(naming.VAULT_VALUE_KEY) == got.get("api_key"), f"{p.agent}: reads a stale {p.credential} from Vault")
        st.note("every agent reads its new value (Secrets Manager through its role; Vault with its own token)")

    def _sweep_event(self, st: Step, function: str) -> dict[str, Any]:
        f = self.functions()[function]
        sched = self.c.aws("scheduler")
        for page in sched.get_paginator("list_schedules").paginate():
            for item in page["Schedules"]:
                full = sched.get_schedule(Name=item["Name"], GroupName=item["GroupName"])
                if full["Target"]["Arn"] == f["arn"]:
                    role = full["Target"]["RoleArn"].split(":role/")[-1]
                    tags = self._tag_context(self.c.aws("lambda").list_tags(Resource=f["arn"]).get("Tags", {}))
                    st.expect(evaluate(self.identity_docs(role), Request("lambda:InvokeFunction", f["arn"], tags)) == "Allow",
                              f"schedule {item['Name']}: its role may not invoke {function}")
                    event: dict[str, Any] = json.loads(full["Target"]["Input"])
                    return event
        st.fail(f"no schedule targets {function} ({f['arn']})")
        return {"Action": "revokeDue"}

    def grace(self, st: Step) -> None:
        """Every function's sweep at grace - 1 h keeps every old key; at grace + 1 h revokes them.
        All early sweeps run before any late one: a shared function's sweep covers several secrets."""
        plans = [p for p in self.automated() if p.secret_name in getattr(self, "rotated", {})]
        grace_h = self.s.rotation_grace_hours
        events = {p.function_name: self._sweep_event(st, p.function_name) for p in plans}
        early = self.now + timedelta(hours=max(grace_h - 1, 0))
        late = self.now + timedelta(hours=grace_h + 1)
        for fn, event in sorted(events.items()):
            handler.handle(event, self.deps(fn, clock=lambda: early))
        for p in plans:
            before, _ = self.rotated[p.secret_name]
            if "key_id" in before:
                st.expect(self.fake.works(before.get("api_key")), f"{p.secret_name}: old key revoked {grace_h - 1} h in, before the grace period")
        for fn, event in sorted(events.items()):
            handler.handle(event, self.deps(fn, clock=lambda: late))
        for p in plans:
            before, after = self.rotated[p.secret_name]
            provider_key = "key_id" in before
            if provider_key:
                st.expect(not self.fake.works(before.get("api_key")), f"{p.secret_name}: old key still works after the grace period")
                st.expect(self.fake.works(after.get("api_key")), f"{p.secret_name}: the sweep broke the current key")
            st.note(f"{p.agent}/{p.credential}: {p.function_name}'s sweep {json.dumps(events[p.function_name])} at +{grace_h - 1} h kept"
                    f" the old key, at +{grace_h + 1} h " + ("revoked it at the provider" if provider_key else "had nothing to revoke at a provider"))

    def pause(self, st: Step) -> None:
        from ruamel.yaml import YAML

        candidates = [a for a in self.fleet.agents if not a.paused and any("aws" in c.stores or "vault" in c.stores for c in a.credentials)]
        if len(self.fleet.agents) < 2 or not candidates:
            st.note("fewer than two agents: nothing to compare a pause against")
            return
        target = candidates[0].name
        yaml = YAML()
        doc = yaml.load(self.fleet_path.read_text(encoding="utf-8"))
        for entry in doc["agents"]:
            if entry["name"] == target:
                entry["paused"] = True
        paused_file = self.workdir / self.fleet_path.name
        with open(paused_file, "w", encoding="utf-8") as f:
            yaml.dump(doc, f)
        from agentfleet.core.loader import load_fleet

        paused_fleet = load_fleet(paused_file, self.s)
        mocks2 = ApplyMocks(self.c, prior=self.mocks.applied)
        self.rerun(paused_fleet, paused_file, mocks2)
        self._docs.clear()
        changed = sorted({f"{o.type.split(':')[-1]} {o.name}" for o in mocks2.outcomes if o.status == "updated"})
        for o in mocks2.outcomes:
            st.expect(o.status not in ("failed", "unsupported") or o.type in {x.type for x in self.mocks.outcomes if x.status == "unsupported"},
                      f"update {o.type} {o.name}: {o.status} {o.detail}")
        st.note(f"`paused: true` on {target} re-applied {len(changed)} resource(s): {', '.join(changed)}")
        self._matrix(st, {target} | {a for a, v_ in self.agents.items() if v_.paused})
        for a in self.plan["agents"]:
            ag = self.agents[a["name"]]
            for owner, mount, path in self.vault_paths():
                if owner != a["name"] or ag.vault_token is None:
                    continue
                got = self.vault_read(ag.vault_token, mount, path)
                want = "forbidden" if a["name"] == target or a["paused"] else "ok"
                st.expect(got == want, f"{a['name']}'s existing Vault token reading {mount}/{path}: {got}, expected {want}")
        st.expect(vault_token_policies(self.s, paused_fleet.agent(target)) == [], f"{target}: a new Vault login would still get its policy")
        self.paused = target

    def emergency(self, st: Step) -> None:
        plans = [p for p in self.automated() if p.agent != getattr(self, "paused", None)] or self.automated()
        if not plans:
            st.note("no automatically rotated credential: emergency rotation is the manual runbook (put-values)")
            return
        p = next((x for x in plans if "key_id" in self._current(x.secret_name)), plans[0])
        before = self._current(p.secret_name)
        outcome = emergency.rotate_now(InProcessLambda(lambda fn: self.deps(fn)), p)
        after = self._current(p.secret_name)
        st.expect(outcome.ok, f"{p.agent}/{p.credential}: {outcome.error}")
        st.expect(after.get("api_key") != before.get("api_key"), f"{p.secret_name}: AWSCURRENT did not change")
        if "key_id" in before:
            st.expect(not self.fake.works(before.get("api_key")), f"{p.secret_name}: the leaked key still works")
            st.expect(self.fake.works(after.get("api_key")), f"{p.secret_name}: the new key does not work")
        if p.vault:
            mount, path = p.vault.split("/", 1)
            doc = self.c.vault().secrets.kv.v2.read_secret_version(mount_point=mount, path=path, raise_on_deleted_version=True)
            st.expect(doc["data"]["data"].get(naming.VAULT_VALUE_KEY) == after.get("api_key"), f"{p.vault}: Vault copy not rewritten")
        st.note(f"{p.agent}/{p.credential} via agentfleet.operate.emergency -> {p.function_name}: {json.dumps(outcome.result, sort_keys=True)}")
