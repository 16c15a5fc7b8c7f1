"""The initial value of a generated credential, replayed against Secrets Manager (moto).

Takes the exact inputs the program gives its `SecretVersion` (from a mock run) and plays what
the provider would do with them: create, a rotation, then the worst case for a rotation — the
initial version written again (e.g. after a refresh dropped it from the state). The rotated
value must stay current.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentfleet.components import fleet as fleet_module
from agentfleet.runner.mockrun import run_program
from tests.pulumi_harness import SECRET, SECRET_VERSION


@pytest.fixture(scope="module")
def initial_version_inputs() -> tuple[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fleet_module, "DEFAULT_EXTENSIONS", ())
        run = run_program("dev")
    version = run.named("billing/webhook-signing/initial-version", SECRET_VERSION)
    secret = run.named("billing/webhook-signing/secret", SECRET)
    return str(secret.props["name"]), version.props


def current(client: Any, name: str) -> str:
    return str(client.get_secret_value(SecretId=name)["SecretString"])


def test_rotation_survives_a_rewritten_initial_version(initial_version_inputs: tuple[str, dict[str, Any]]) -> None:
    name, props = initial_version_inputs
    stages = list(props["versionStages"])
    initial = str(props["secretString"])
    assert "AWSCURRENT" not in stages
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(Name=name)  # the Secret resource: no value
        # `pulumi up`: the provider writes the first version with the program's stages.
        sm.put_secret_value(SecretId=name, SecretString=initial, VersionStages=stages,
                            ClientRequestToken=str(uuid.uuid4()))
        assert current(sm, name) == initial  # AWS makes a secret's first version current by itself
        # A rotation (the rotation function's finishSecret moves AWSCURRENT).
        sm.put_secret_value(SecretId=name, SecretString="rotated-value", ClientRequestToken=str(uuid.uuid4()))
        assert current(sm, name) == "rotated-value"
        # The initial version written again with the same inputs: it cannot take AWSCURRENT.
        sm.put_secret_value(SecretId=name, SecretString=initial, VersionStages=stages,
                            ClientRequestToken=str(uuid.uuid4()))
        assert current(sm, name) == "rotated-value"


def test_claiming_awscurrent_would_undo_the_rotation(initial_version_inputs: tuple[str, dict[str, Any]]) -> None:
    """The negative case the staging label avoids: a version that asks for AWSCURRENT wins."""
    name, props = initial_version_inputs
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(Name=name)
        sm.put_secret_value(SecretId=name, SecretString="rotated-value", ClientRequestToken=str(uuid.uuid4()))
        sm.put_secret_value(SecretId=name, SecretString=str(props["secretString"]), VersionStages=["AWSCURRENT"],
                            ClientRequestToken=str(uuid.uuid4()))
        assert current(sm, name) != "rotated-value"
