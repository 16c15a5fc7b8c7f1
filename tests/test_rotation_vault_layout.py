"""Shared rotation functions find a secret's Vault copy by the environment's naming rule plus the
secret's `vault-copy` tag (no per-secret map in Lambda's 4 KB environment); a tag can mark a copy
but never redirect a write."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.rotation.config import VAULT_COPY_TAG, Config, VaultLayout, VaultTarget, load_config
from agentfleet.rotation.errors import ConfigError, RotationError
from agentfleet.rotation.handler import Deps, Rotation, vault_target
from agentfleet.rotation.strategies import build_strategy

LAYOUT = VaultLayout(mount="kv", secret_prefix="agents/dev/", path_prefix="dev/")


class FakeSecrets:
    """describe_secret only: the tags the deployer set on each secret."""

    def __init__(self, tags: dict[str, dict[str, str]]):
        self.tags, self.calls = tags, 0

    def describe_secret(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        self.calls += 1
        return {"Name": SecretId, "Tags": [{"Key": k, "Value": v} for k, v in self.tags.get(SecretId, {}).items()]}


def rotation(client: FakeSecrets, name: str, config: Config) -> Rotation:
    return Rotation(deps=Deps(client=client, config=config), secret_id=name, name=name, token="t",
                    strategy=build_strategy("generated", client, config))


def test_a_tagged_secret_gets_the_layouts_target_and_an_untagged_one_none() -> None:
    client = FakeSecrets({"agents/dev/research/openai": {VAULT_COPY_TAG: "kv/dev/research/openai", "agent": "research"},
                          "agents/dev/crm/openai": {"agent": "crm"}})
    config = Config(default_strategy="generated", vault_layout=LAYOUT)
    assert vault_target(rotation(client, "agents/dev/research/openai", config)) == VaultTarget("kv", "dev/research/openai")
    assert vault_target(rotation(client, "agents/dev/crm/openai", config)) is None
    assert client.calls == 2


def test_a_tag_naming_another_path_is_refused() -> None:
    client = FakeSecrets({"agents/dev/research/openai": {VAULT_COPY_TAG: "kv/dev/crm/openai"}})  # another agent's copy
    with pytest.raises(RotationError, match="refusing to write Vault"):
        vault_target(rotation(client, "agents/dev/research/openai", Config(default_strategy="generated", vault_layout=LAYOUT)))
    other_env = FakeSecrets({"agents/prod/research/openai": {VAULT_COPY_TAG: "kv/prod/research/openai"}})
    with pytest.raises(RotationError):
        vault_target(rotation(other_env, "agents/prod/research/openai", Config(default_strategy="generated", vault_layout=LAYOUT)))


def test_without_a_layout_only_the_map_counts_and_no_tag_is_read() -> None:
    client = FakeSecrets({"agents/dev/research/openai": {VAULT_COPY_TAG: "kv/dev/research/openai"}})
    mapped = Config(default_strategy="generated", vault_map={"agents/dev/research/openai": VaultTarget("kv", "dev/research/openai")})
    assert vault_target(rotation(client, "agents/dev/research/openai", mapped)) == VaultTarget("kv", "dev/research/openai")
    assert vault_target(rotation(client, "agents/dev/research/openai", Config(default_strategy="generated"))) is None
    assert client.calls == 0


def test_layout_config_is_validated() -> None:
    good = load_config({"ROTATION_VAULT_LAYOUT": '{"mount":"kv","secretPrefix":"agents/dev/","pathPrefix":"dev/"}'})
    assert good.vault_layout == LAYOUT
    for bad in ('{"mount":"kv","secretPrefix":"agents/dev/","pathPrefix":"../"}', '{"mount":"kv"}', "[]",
                '{"mount":"k v","secretPrefix":"a/","pathPrefix":"dev/"}'):
        with pytest.raises(ConfigError, match="ROTATION_VAULT_LAYOUT"):
            load_config({"ROTATION_VAULT_LAYOUT": bad})
    assert LAYOUT.target("agents/dev/x/../../sys") is None  # never a path outside plain segments
