"""Stack settings: defaults, errors that name the config key, no plaintext secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentfleet.core.settings import SettingsError, load_stack_settings, settings_from_config


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "Pulumi.test.yaml"
    p.write_text(body)
    return p


def test_defaults(tmp_path: Path) -> None:
    s = load_stack_settings(write(tmp_path, 'config:\n  aws:region: eu-west-1\n  agentfleet:awsAccountId: "210987654321"\n'), "test")
    assert (s.environment, s.secret_prefix, s.vault_mount, s.recovery_window_days) == ("test", "agents", "kv", 30)
    assert s.protect is False and s.rotation_isolation == "per-agent" and s.partition == "aws"


def test_missing_and_bad_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as exc:
        load_stack_settings(write(tmp_path, "config:\n  agentfleet:recoveryWindowDays: 3\n  agentfleet:rotationIsolation: global\n"), "test")
    text = str(exc.value)
    assert "`aws:region` is required" in text
    assert "`agentfleet:awsAccountId` is required" in text
    assert "`agentfleet:recoveryWindowDays`" in text
    assert "`agentfleet:rotationIsolation`" in text


def test_plaintext_vault_token_is_refused(tmp_path: Path) -> None:
    body = 'config:\n  aws:region: us-east-1\n  agentfleet:awsAccountId: "123456789012"\n  vault:token: s.abcdef\n'
    with pytest.raises(SettingsError, match="pulumi config set --secret vault:token"):
        load_stack_settings(write(tmp_path, body), "test")
    ok = body.replace("vault:token: s.abcdef", "vault:token:\n    secure: AAABAHx0ZW5jcnlwdGVk")
    assert load_stack_settings(write(tmp_path, ok), "test").aws_region == "us-east-1"


def test_admin_principals_must_be_exact_roles() -> None:
    cfg = {"aws:region": "us-east-1", "agentfleet:awsAccountId": "123456789012",
           "agentfleet:adminPrincipals": ["arn:aws:iam::123456789012:root"]}
    with pytest.raises(SettingsError, match="adminPrincipals"):
        settings_from_config("dev", cfg.get)


def test_pulumi_config_strings_are_coerced() -> None:
    # `pulumi.Config.get` hands every value over as a string.
    cfg = {"aws:region": "us-east-1", "agentfleet:awsAccountId": "123456789012", "agentfleet:protect": "true",
           "agentfleet:recoveryWindowDays": "14", "agentfleet:adminPrincipals": '["arn:aws:iam::123456789012:role/bg"]',
           "agentfleet:usageBaselines": '{"research": 50}'}
    s = settings_from_config("prod", cfg.get)
    assert s.protect is True and s.recovery_window_days == 14
    assert s.admin_principals == ("arn:aws:iam::123456789012:role/bg",)
    assert s.usage_baselines == {"research": 50}


def test_pulumi_new_template_asks_for_every_required_setting(repo: Path) -> None:
    """`pulumi new <repo>` must produce a stack the program accepts once the prompts are answered."""
    from ruamel.yaml import YAML

    from agentfleet.core.settings import _KEYS, CONFIG_KEYS, StackSettings

    template = YAML(typ="safe").load((repo / "Pulumi.yaml").read_text())["template"]["config"]
    required = {"aws:region"} | {
        f"agentfleet:{k}" for k, (field, _) in _KEYS.items()
        if StackSettings.model_fields[field].is_required() and field != "environment"
    }
    assert required <= set(template), required - set(template)
    assert all(k in CONFIG_KEYS or k.startswith("vault:") for k in template)
    answers = {k: v.get("default") for k, v in template.items()}
    answers["agentfleet:awsAccountId"] = "210987654321"
    assert settings_from_config("dev", answers.get).aws_account_id == "210987654321"
    assert (repo / "tests" / "project" / "Pulumi.yaml").read_text() == (repo / "Pulumi.yaml").read_text()
