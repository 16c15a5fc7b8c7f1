"""Secrets Manager rotation: the four-step protocol, revocation sweeps and emergency rotation.

Invocations (one Lambda entry point, dispatched by dict):
  {"Step": "createSecret"|"setSecret"|"testSecret"|"finishSecret", "SecretId", "ClientRequestToken"}
        from Secrets Manager (scheduled or `aws secretsmanager rotate-secret`).
  {"Action": "revokeDue", "SecretIds": [...], "Force": false}
        hourly from EventBridge: revoke old keys whose grace period has passed.
  {"Action": "rotateNow", "SecretId": ..., "Emergency": true}
        one command for a leaked key: rotate now and revoke the old key right after verify.

Safety rules, each enforced in one place:
  * a step runs only if the AWS template guards pass (rotation enabled, token known, not yet
    AWSCURRENT, staged AWSPENDING) and does nothing the second time it runs;
  * any failure aborts the rotation it belongs to: the unverified new key is revoked and the
    AWSPENDING label removed, so AWSCURRENT keeps the working key and the next rotation is not
    blocked (`abort` never touches a version that is AWSCURRENT);
  * an old key is revoked only from the ledger (agentfleet/rotation/ledger.py), i.e. after its replacement
    passed testSecret and became AWSCURRENT, after the grace period (0 in an emergency), and
    only while the AWSCURRENT key passes the strategy's test right now;
  * a failed revoke is logged (`revoke_failed`), kept in the ledger for the next sweep, and
    never changes a staging label;
  * a credential with a Vault copy (ROTATION_VAULT_MAP) gets the AWSCURRENT value written to
    Vault right after finishSecret promoted it (and by every sweep until that succeeds); no old
    key is revoked until the sync record says Vault holds AWSCURRENT, so an agent reading Vault
    is never left with a revoked key. A failed sync is logged (`vault_sync_failed`) and never
    changes a staging label.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Optional

from agentfleet.rotation import credential
from agentfleet.rotation import ledger as ledger_mod
from agentfleet.rotation import vault_sync
from agentfleet.rotation.config import VAULT_COPY_TAG, Config, VaultTarget, load_config
from agentfleet.rotation.credential import Credential
from agentfleet.rotation.errors import GuardError, RotationError, RotationInProgress, SweepError
from agentfleet.rotation.logs import error_code, log
from agentfleet.rotation.strategies import Strategy, build_strategy
from agentfleet.rotation.vault_sync import SyncRecord, VaultNotConfigured, VaultWriter

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

Clock = Callable[[], datetime]
StrategyFactory = Callable[[str, Any, Config], Strategy]
VaultFactory = Callable[[Config], Optional[VaultWriter]]

VAULT_NOT_MAPPED, VAULT_IN_SYNC, VAULT_SYNCED, VAULT_FAILED = "not_mapped", "in_sync", "synced", "failed"
VAULT_NO_VALUE = "no_value"


class EmergencyIncomplete(RotationError):
    """An emergency rotation promoted a verified new key but could not finish: Vault copy or revocation pending."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Deps:
    """Everything a step touches from outside, injected so tests run against moto and fakes."""

    client: Any
    """A boto3 Secrets Manager client."""
    config: Config
    clock: Clock = utcnow
    strategy_factory: StrategyFactory = build_strategy
    vault_factory: VaultFactory = vault_sync.writer_from_config
    """Builds the Vault writer on first use (tests: a token login against a local OpenBao)."""
    _vault: list[Optional[VaultWriter]] = field(default_factory=list, init=False, repr=False)

    def vault_writer(self) -> VaultWriter:
        """The writer, built once per invocation; raises if Vault is mapped but not configured."""
        if not self._vault:
            self._vault.append(self.vault_factory(self.config))
        writer = self._vault[0]
        if writer is None:
            self._vault.clear()
            raise VaultNotConfigured("no Vault writer: VAULT_ADDR / VAULT_ROLE missing or nothing mapped")
        return writer

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> "Deps":
        import boto3

        return cls(client=boto3.client("secretsmanager"), config=load_config(os.environ if env is None else env))


@dataclass(frozen=True)
class Rotation:
    """One rotation (or sweep) of one secret."""

    deps: Deps
    secret_id: str
    name: str
    token: str
    strategy: Strategy
    emergency: bool = False

    @property
    def client(self) -> Any:
        return self.deps.client

    def now(self) -> datetime:
        return self.deps.clock()

    @property
    def grace(self) -> timedelta:
        return timedelta(0) if self.emergency else timedelta(hours=self.deps.config.grace_hours)


# ---- Secrets Manager reads ----


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def _versions(client: Any, secret_id: str) -> tuple[dict[str, list[str]], Mapping[str, Any]]:
    """Versions that carry at least one staging label (unlabelled ones are deprecated)."""
    meta = client.describe_secret(SecretId=secret_id)
    versions = {vid: list(stages) for vid, stages in (meta.get("VersionIdsToStages") or {}).items() if stages}
    return versions, meta


def _version_with(versions: Mapping[str, list[str]], stage: str) -> str | None:
    for vid, stages in versions.items():
        if stage in stages:
            return vid
    return None


def _read(client: Any, secret_id: str, *, version_id: str | None = None, stage: str | None = None) -> Credential | None:
    kwargs: dict[str, str] = {"SecretId": secret_id}
    if version_id:
        kwargs["VersionId"] = version_id
    if stage:
        kwargs["VersionStage"] = stage
    try:
        resp = client.get_secret_value(**kwargs)
    except Exception as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise
    text = resp.get("SecretString")
    return credential.parse(text) if isinstance(text, str) else None


def _foreign_pending(versions: Mapping[str, list[str]], token: str) -> str | None:
    """A version staged AWSPENDING by another rotation (not the token, not already current)."""
    for vid, stages in versions.items():
        if PENDING in stages and CURRENT not in stages and vid != token:
            return vid
    return None


def _same_credential(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    if a is None or b is None:
        return False
    ka, kb = credential.key_id(a), credential.key_id(b)
    if ka or kb:
        return ka == kb
    return a.get(credential.KEY_FIELD) == b.get(credential.KEY_FIELD)


def new_rotation(deps: Deps, secret_id: str, token: str, *, emergency: bool = False) -> Rotation:
    meta = deps.client.describe_secret(SecretId=secret_id)
    name = str(meta.get("Name") or secret_id)
    strategy = deps.strategy_factory(deps.config.strategy_for(name), deps.client, deps.config)
    return Rotation(deps=deps, secret_id=secret_id, name=name, token=token, strategy=strategy, emergency=emergency)


# ---- the AWS template guards ----


def guard(rot: Rotation, step: str) -> bool:
    """True if the step must run; False if the token is already AWSCURRENT; raise if refused."""
    versions, meta = _versions(rot.client, rot.secret_id)
    if not meta.get("RotationEnabled"):
        raise GuardError(f"rotation is not enabled for secret {rot.name}")
    stages = versions.get(rot.token)
    if stages is None:
        raise GuardError(f"version {rot.token} has no stage for rotation of secret {rot.name}")
    if CURRENT in stages:
        log("already_current", step=step, secret=rot.name, token=rot.token)
        return False
    if PENDING not in stages:
        raise GuardError(f"version {rot.token} is not set as AWSPENDING for rotation of secret {rot.name}")
    return True


# ---- the four steps ----


def create_secret(rot: Rotation) -> None:
    """Mint the new credential and store it as AWSPENDING under the request token (once)."""
    if _read(rot.client, rot.secret_id, version_id=rot.token) is not None:
        log("create_skipped", secret=rot.name, token=rot.token, reason="pending value exists")
        return
    current = _read(rot.client, rot.secret_id, stage=CURRENT) or {}
    new = dict(rot.strategy.create(current, label=f"{rot.name} {rot.token[:8]}"))
    new.update(strategy=rot.strategy.name, created_at=credential.iso(rot.now()))
    try:
        rot.client.put_secret_value(
            SecretId=rot.secret_id, ClientRequestToken=rot.token,
            SecretString=credential.dumps(new), VersionStages=[PENDING],
        )
    except Exception as exc:
        # The write may have landed anyway (lost response) or a concurrent invocation with the
        # same token may have stored its own key first. A key that is not stored is revoked now.
        stored = _safe(lambda: _read(rot.client, rot.secret_id, version_id=rot.token))
        if stored is not None and _same_credential(stored, new):
            log("create_response_lost", secret=rot.name, token=rot.token, error=error_code(exc))
            return
        _discard_key(rot, new, reason="not stored")
        if stored is not None:
            log("create_lost_race", secret=rot.name, token=rot.token, key_id=credential.key_id(new))
            return
        raise
    log("pending_created", secret=rot.name, token=rot.token, key_id=credential.key_id(new), strategy=rot.strategy.name)


def set_secret(rot: Rotation) -> None:
    """Providers that mint keys activate them at creation; nothing to push, but the value must exist."""
    if _read(rot.client, rot.secret_id, version_id=rot.token) is None:
        raise RotationError(f"no AWSPENDING value for version {rot.token}")
    log("set_noop", secret=rot.name, token=rot.token, strategy=rot.strategy.name)


def test_secret(rot: Rotation) -> None:
    new = _read(rot.client, rot.secret_id, version_id=rot.token)
    if new is None:
        raise RotationError(f"no AWSPENDING value for version {rot.token}")
    rot.strategy.test(new)
    log("test_passed", secret=rot.name, token=rot.token, key_id=credential.key_id(new))


def finish_secret(rot: Rotation) -> None:
    """Promote AWSPENDING to AWSCURRENT, then schedule (or, in an emergency, do) the old key's revocation."""
    versions, _ = _versions(rot.client, rot.secret_id)
    current_vid = _version_with(versions, CURRENT)
    if current_vid == rot.token:
        finish_already_done(rot)
        return
    old = _read(rot.client, rot.secret_id, version_id=current_vid) if current_vid else None
    new = _read(rot.client, rot.secret_id, version_id=rot.token)
    if new is None:
        raise RotationError(f"no AWSPENDING value for version {rot.token}")
    move: dict[str, str] = {"SecretId": rot.secret_id, "VersionStage": CURRENT, "MoveToVersionId": rot.token}
    if current_vid:
        move["RemoveFromVersionId"] = current_vid
    try:
        rot.client.update_secret_version_stage(**move)
    except Exception as exc:
        after, _ = _versions(rot.client, rot.secret_id)
        if CURRENT not in after.get(rot.token, []):
            raise
        log("promote_response_lost", secret=rot.name, token=rot.token, error=error_code(exc))
    log("rotation_finished", secret=rot.name, token=rot.token, previous_version=current_vid,
        key_id=credential.key_id(new), emergency=rot.emergency)
    _drop_pending_label(rot)
    # testSecret verified exactly this version before Secrets Manager called finishSecret.
    sync_vault_quietly(rot, verified_version=rot.token)
    record_replacement(rot, old, new)
    _revoke_quietly(rot)


def finish_already_done(rot: Rotation) -> None:
    """A retried finishSecret: heal a lost Vault sync or ledger write, then revoke what is due."""
    _drop_pending_label(rot)
    sync_vault_quietly(rot)
    current = _read(rot.client, rot.secret_id, stage=CURRENT)
    record_replacement(rot, None, current)
    _revoke_quietly(rot)


STEPS: dict[str, Callable[[Rotation], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


# ---- the Vault copy ----


def vault_target(rot: Rotation) -> VaultTarget | None:
    """The secret's Vault copy: from the function's map (per-agent), or (shared functions) from the
    environment's layout when the secret carries the `vault-copy` tag naming exactly that target."""
    config = rot.deps.config
    mapped = config.vault_map.get(rot.name)
    if mapped is not None or config.vault_layout is None:
        return mapped
    tags = {t.get("Key"): t.get("Value") for t in (rot.client.describe_secret(SecretId=rot.secret_id).get("Tags") or [])}
    tagged = tags.get(VAULT_COPY_TAG)
    if tagged is None:
        return None
    expected = config.vault_layout.target(rot.name)
    if expected is None or str(expected) != tagged:
        raise RotationError(f"secret {rot.name}: tag {VAULT_COPY_TAG}={tagged!r} is not the environment's Vault"
                            f" location for it ({expected}); refusing to write Vault")
    return expected


def _vault_label(rot: Rotation) -> str:
    """For log lines: the target, or why there is none (never raises)."""
    try:
        return str(vault_target(rot))
    except Exception as exc:  # noqa: BLE001 - a log label must not mask the original failure
        return f"<{error_code(exc)}>"


def sync_vault(rot: Rotation, *, verified_version: str | None = None) -> str:
    """Write the AWSCURRENT value to the credential's Vault copy, unless the sync record says it is there.

    Only a working key goes to Vault: the AWSCURRENT value is tested with the strategy first,
    unless the caller has just verified that very version (finishSecret after testSecret).
    """
    target = vault_target(rot)
    if target is None:
        return VAULT_NOT_MAPPED
    versions, _ = _versions(rot.client, rot.secret_id)
    current_vid = _version_with(versions, CURRENT)
    if current_vid is None:
        return VAULT_NO_VALUE  # a new secret whose first value a human has not written yet
    record = vault_sync.read_record(rot.client, rot.secret_id)
    if record is not None and record.version_id == current_vid:
        return VAULT_IN_SYNC
    current = _read(rot.client, rot.secret_id, version_id=current_vid)
    value = current.get(credential.KEY_FIELD) if current else None
    if current is None or not isinstance(value, str) or not value:
        raise RotationError(f"AWSCURRENT of secret {rot.name} has no {credential.KEY_FIELD}")
    if current_vid != verified_version:
        rot.strategy.test(current)
    kv_version = rot.deps.vault_writer().write(target, value)
    vault_sync.write_record(rot.client, rot.secret_id, SyncRecord(
        version_id=current_vid, key_id=credential.key_id(current), vault=str(target),
        synced_at=credential.iso(rot.now()), vault_version=kv_version,
    ))
    log(vault_sync.SYNCED_EVENT, secret=rot.name, version=current_vid, key_id=credential.key_id(current),
        vault=str(target), vault_version=kv_version)
    return VAULT_SYNCED


def sync_vault_quietly(rot: Rotation, *, verified_version: str | None = None) -> str:
    """A failed sync never fails a promotion: it is logged (and alarmed), retried by the sweep, and
    keeps the old key from being revoked (`vault_in_sync`)."""
    try:
        return sync_vault(rot, verified_version=verified_version)
    except Exception as exc:
        log(vault_sync.SYNC_FAILED_EVENT, level=logging.ERROR, secret=rot.name, vault=_vault_label(rot), error=error_code(exc),
            hint="AWSCURRENT is unchanged and old keys stay valid until the Vault copy is written; the hourly sweep retries")
        return VAULT_FAILED


def vault_in_sync(rot: Rotation, current_vid: str | None) -> bool:
    """True if the credential has no Vault copy, or the copy holds the AWSCURRENT version's value."""
    if vault_target(rot) is None:
        return True
    record = vault_sync.read_record(rot.client, rot.secret_id)
    return current_vid is not None and record is not None and record.version_id == current_vid


# ---- ledger: schedule and perform revocations ----


def record_replacement(rot: Rotation, old: Credential | None, new: Credential | None) -> None:
    """Put the replaced key in the ledger with not_before = now + grace (once per token)."""
    if not rot.strategy.revokes:
        return
    if old is None:
        versions, _ = _versions(rot.client, rot.secret_id)
        previous = _version_with(versions, PREVIOUS)
        old = _read(rot.client, rot.secret_id, version_id=previous) if previous else None
        if old is None:
            return
    old_id, new_id = credential.key_id(old), credential.key_id(new)
    if old_id is None:
        log("old_key_unknown", level=logging.WARNING, secret=rot.name, token=rot.token,
            hint="the previous value had no key_id: revoke it at the provider by hand")
        return
    if old_id == new_id:
        return
    not_before = credential.iso(rot.now() + rot.grace)
    entry = ledger_mod.Entry(key_id=old_id, ref=credential.ref(old), not_before=not_before, replaced_by=rot.token)

    def add(ledger: ledger_mod.Ledger) -> bool:
        if ledger.knows(old_id) or any(e.replaced_by == rot.token for e in ledger.pending):
            return False
        ledger.pending.append(entry)
        return True

    ledger_mod.update(rot.client, rot.secret_id, add)
    log("revocation_scheduled", secret=rot.name, key_id=old_id, not_before=not_before, replaced_by=rot.token)


def revoke_due(rot: Rotation, *, force: bool = False) -> list[str]:
    """Revoke ledger entries past their grace period (all of them if `force`). Returns revoked ids."""
    now = rot.now()
    due = [e for e in ledger_mod.read(rot.client, rot.secret_id).pending if force or e.due(now)]
    if not due:
        return []
    versions, _ = _versions(rot.client, rot.secret_id)
    current = _read(rot.client, rot.secret_id, stage=CURRENT)
    pending_vid = _foreign_pending(versions, "")
    pending = _read(rot.client, rot.secret_id, version_id=pending_vid) if pending_vid else None
    if current is None:
        log("revoke_skipped", level=logging.WARNING, secret=rot.name, reason="no AWSCURRENT value")
        return []
    if not vault_in_sync(rot, _version_with(versions, CURRENT)):
        log("revoke_skipped", level=logging.WARNING, secret=rot.name, reason="Vault copy does not hold AWSCURRENT yet",
            vault=_vault_label(rot), keys=[e.key_id for e in due])
        return []
    try:
        rot.strategy.test(current)
    except Exception as exc:
        log("revoke_skipped", level=logging.WARNING, secret=rot.name, reason="AWSCURRENT key failed verification",
            error=error_code(exc), keys=[e.key_id for e in due])
        return []
    in_use = {k for k in (credential.key_id(current), credential.key_id(pending)) if k}
    revoked: list[str] = []
    dropped: list[str] = []
    failed: dict[str, str] = {}
    for entry in due:
        if entry.key_id in in_use:
            dropped.append(entry.key_id)
            log("revoke_skipped", level=logging.WARNING, secret=rot.name, key_id=entry.key_id, reason="key is in use")
            continue
        try:
            rot.strategy.revoke(entry.ref)
        except Exception as exc:
            failed[entry.key_id] = error_code(exc)
            log("revoke_failed", level=logging.ERROR, secret=rot.name, key_id=entry.key_id,
                attempts=entry.attempts + 1, error=failed[entry.key_id], strategy=rot.strategy.name)
            continue
        revoked.append(entry.key_id)
        log("key_revoked", secret=rot.name, key_id=entry.key_id, replaced_by=entry.replaced_by,
            reason=entry.reason, not_before=entry.not_before, emergency=force)

    def apply(ledger: ledger_mod.Ledger) -> bool:
        changed = False
        for e in list(ledger.pending):
            if e.key_id in revoked or e.key_id in dropped:
                ledger.pending.remove(e)
                changed = True
            elif e.key_id in failed:
                e.attempts += 1
                e.last_error = failed[e.key_id]
                changed = True
        stamp = credential.iso(now)
        ledger.revoked.extend({"key_id": k, "revoked_at": stamp} for k in revoked)
        return changed or bool(revoked)

    ledger_mod.update(rot.client, rot.secret_id, apply)
    return revoked


def _revoke_quietly(rot: Rotation) -> None:
    """After a successful promotion a revocation problem must not fail the rotation: log it."""
    try:
        revoke_due(rot, force=rot.emergency)
    except Exception as exc:
        log("revoke_failed", level=logging.ERROR, secret=rot.name, reason="sweep after finish", error=error_code(exc))


def _discard_key(rot: Rotation, cred: Credential, *, reason: str) -> None:
    """Revoke a key that never became AWSCURRENT (nobody uses it); if that fails, ledger it as due now."""
    kid = credential.key_id(cred)
    if not rot.strategy.revokes or kid is None:
        return
    try:
        rot.strategy.revoke(credential.ref(cred))
        log("unused_key_revoked", secret=rot.name, key_id=kid, reason=reason)
        return
    except Exception as exc:
        log("revoke_failed", level=logging.ERROR, secret=rot.name, key_id=kid, reason=reason, error=error_code(exc))
    entry = ledger_mod.Entry(key_id=kid, ref=credential.ref(cred), not_before=credential.iso(rot.now()),
                             replaced_by=rot.token, reason=reason, attempts=1)

    def add(ledger: ledger_mod.Ledger) -> bool:
        if ledger.knows(kid):
            return False
        ledger.pending.append(entry)
        return True

    _safe(lambda: ledger_mod.update(rot.client, rot.secret_id, add))


# ---- aborting a failed rotation ----


def abort(rot: Rotation, reason: str) -> None:
    """Undo a failed rotation: revoke its unverified key and free AWSPENDING. Never raises."""
    try:
        versions, _ = _versions(rot.client, rot.secret_id)
        stages = versions.get(rot.token, [])
        if CURRENT in stages or PENDING not in stages:
            return  # promoted after all, or another rotation owns AWSPENDING now: not ours to undo
        pending = _read(rot.client, rot.secret_id, version_id=rot.token)
        current = _read(rot.client, rot.secret_id, stage=CURRENT)
        if pending is not None and not _same_credential(pending, current):
            _discard_key(rot, pending, reason="rotation aborted")
        rot.client.update_secret_version_stage(SecretId=rot.secret_id, VersionStage=PENDING, RemoveFromVersionId=rot.token)
        log("rotation_aborted", level=logging.WARNING, secret=rot.name, token=rot.token, reason=reason)
    except Exception as exc:
        log("abort_failed", level=logging.ERROR, secret=rot.name, token=rot.token, error=error_code(exc))


def _drop_pending_label(rot: Rotation) -> None:
    """Leave no AWSPENDING behind once the token is current (harmless if the service does it too)."""
    try:
        versions, _ = _versions(rot.client, rot.secret_id)
        if PENDING in versions.get(rot.token, []):
            rot.client.update_secret_version_stage(SecretId=rot.secret_id, VersionStage=PENDING, RemoveFromVersionId=rot.token)
    except Exception as exc:
        log("pending_label_kept", level=logging.WARNING, secret=rot.name, token=rot.token, error=error_code(exc))


def clear_stale_pending(rot: Rotation, versions: Mapping[str, list[str]]) -> None:
    """Refuse while another rotation is live; abort it if it was abandoned long ago."""
    other = _foreign_pending(versions, rot.token)
    if other is None:
        return
    value = _read(rot.client, rot.secret_id, version_id=other)
    created = credential.parse_iso(str(value.get("created_at"))) if value else None
    stale_after = timedelta(minutes=rot.deps.config.stale_pending_minutes)
    if created is None or rot.now() - created < stale_after:
        log("rotation_rejected", level=logging.WARNING, secret=rot.name, token=rot.token, pending_version=other,
            reason="another rotation holds AWSPENDING")
        raise RotationInProgress(f"rotation {other} of secret {rot.name} is in progress")
    abort(replace(rot, token=other), "stale AWSPENDING")
    log("stale_pending_cleared", secret=rot.name, pending_version=other)


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        log("cleanup_read_failed", level=logging.WARNING, error=error_code(exc))
        return None


# ---- entry points ----


def run_step(event: Mapping[str, Any], deps: Deps) -> dict[str, Any]:
    step, secret_id, token = event.get("Step"), event.get("SecretId"), event.get("ClientRequestToken")
    if not isinstance(step, str) or step not in STEPS or not isinstance(secret_id, str) or not isinstance(token, str):
        raise GuardError("event needs Step (one of " + ", ".join(STEPS) + "), SecretId and ClientRequestToken")
    rot = new_rotation(deps, secret_id, token, emergency=bool(event.get("Emergency", False)))
    log("step_started", step=step, secret=rot.name, token=token, strategy=rot.strategy.name)
    try:
        if not guard(rot, step):
            if step == "finishSecret":
                finish_already_done(rot)
            return {"step": step, "status": "already_current"}
        STEPS[step](rot)
    except (GuardError, RotationInProgress) as exc:
        log("step_refused", level=logging.WARNING, step=step, secret=rot.name, token=token, error=error_code(exc))
        raise
    except Exception as exc:
        log("rotation_failed", level=logging.ERROR, step=step, secret=rot.name, token=token, error=error_code(exc))
        abort(rot, f"{step} failed")
        raise
    log("step_completed", step=step, secret=rot.name, token=token)
    return {"step": step, "status": "ok"}


def rotate_now(event: Mapping[str, Any], deps: Deps) -> dict[str, Any]:
    """Run the four steps in-process under a fresh token (the documented emergency path)."""
    secret_id = event.get("SecretId")
    if not isinstance(secret_id, str):
        raise GuardError("rotateNow needs SecretId")
    emergency = bool(event.get("Emergency", False))
    rot = new_rotation(deps, secret_id, str(uuid.uuid4()), emergency=emergency)
    versions, meta = _versions(rot.client, rot.secret_id)
    if not meta.get("RotationEnabled"):
        raise GuardError(f"rotation is not enabled for secret {rot.name}")
    clear_stale_pending(rot, versions)
    log("rotate_now_started", secret=rot.name, token=rot.token, emergency=emergency)
    try:
        create_secret(rot)
    except Exception as exc:
        log("rotation_failed", level=logging.ERROR, step="createSecret", secret=rot.name, token=rot.token,
            error=error_code(exc))
        abort(rot, "createSecret failed")
        raise
    for step in ("setSecret", "testSecret", "finishSecret"):
        run_step({"Step": step, "SecretId": secret_id, "ClientRequestToken": rot.token, "Emergency": emergency}, deps)
    vault = VAULT_NOT_MAPPED
    if vault_target(rot) is not None:
        vault = VAULT_IN_SYNC if vault_in_sync(rot, rot.token) else VAULT_FAILED
    unrevoked = [e.key_id for e in ledger_mod.read(rot.client, rot.secret_id).pending]
    if emergency and (vault == VAULT_FAILED or unrevoked):
        log("emergency_incomplete", level=logging.ERROR, secret=rot.name, token=rot.token, vault=vault, keys=unrevoked)
        raise EmergencyIncomplete(
            f"secret {rot.name}: the new key is verified and AWSCURRENT (version {rot.token}), but "
            + ("its Vault copy was not updated, so " if vault == VAULT_FAILED else "")
            + f"old key(s) {unrevoked or '(see ledger)'} are NOT revoked yet; fix the cause (vault_sync_failed /"
            " revoke_failed log lines) and run {\"Action\":\"revokeDue\",\"SecretId\":...,\"Force\":true}"
        )
    return {"status": "rotated", "secret": rot.name, "token": rot.token, "emergency": emergency,
            "vault": vault, "unrevoked": unrevoked}


def revoke_due_action(event: Mapping[str, Any], deps: Deps) -> dict[str, Any]:
    """Scheduled sweep: revoke what is due, clean abandoned AWSPENDING; one secret's failure doesn't stop the rest.

    Without SecretIds/SecretId it sweeps every secret of the function's ROTATION_STRATEGY_MAP
    (a per-agent function knows its secrets; a shared one is given them in the event)."""
    ids = event.get("SecretIds") or ([event["SecretId"]] if isinstance(event.get("SecretId"), str) else [])
    if not ids and "SecretIds" not in event:
        ids = sorted(deps.config.strategy_map)
    force = bool(event.get("Force", False))
    revoked: dict[str, list[str]] = {}
    vault: dict[str, str] = {}
    failures: list[str] = []
    for secret_id in ids:
        try:
            rot = new_rotation(deps, str(secret_id), "", emergency=force)
            versions, _ = _versions(rot.client, rot.secret_id)
            try:
                clear_stale_pending(rot, versions)
            except RotationInProgress:
                pass  # a live rotation: leave it alone, still revoke what is due
            if vault_target(rot) is not None:
                vault[rot.name] = sync_vault_quietly(rot)
            revoked[rot.name] = revoke_due(rot, force=force)
        except Exception as exc:
            failures.append(str(secret_id))
            log("sweep_failed", level=logging.ERROR, secret=str(secret_id), error=error_code(exc))
    log("sweep_completed", secrets=len(ids), failures=len(failures), forced=force)
    if failures:
        raise SweepError(f"{len(failures)} of {len(ids)} secrets failed; see sweep_failed log lines")
    return {"status": "ok", "revoked": revoked, "vault": vault}


ACTIONS: dict[str, Callable[[Mapping[str, Any], Deps], dict[str, Any]]] = {
    "revokeDue": revoke_due_action,
    "rotateNow": rotate_now,
}


def handle(event: Mapping[str, Any], deps: Deps) -> dict[str, Any]:
    if "Step" in event:
        return run_step(event, deps)
    action = event.get("Action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise GuardError("unknown event: expected a Secrets Manager Step or Action " + "/".join(ACTIONS))
    return ACTIONS[action](event, deps)


def lambda_handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    try:
        deps = Deps.from_environment()
    except RotationError as exc:
        log("config_invalid", level=logging.ERROR, error=str(exc))
        raise
    return handle(event, deps)
