"""Configuration, the strategy registry, the OpenAI adapter's edges, the Lambda entry points and the age reporter."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest

from agentfleet.core.model import ROTATION_STRATEGIES
from agentfleet.rotation import age, credential
from agentfleet.rotation.config import DEFAULT_OPENAI_BASE_URL, Config, load_config
from agentfleet.rotation.errors import ConfigError, GuardError, ProviderError
from agentfleet.rotation.handler import Deps, handle, lambda_handler
from agentfleet.rotation.openai_admin import OpenAIStrategy
from agentfleet.rotation.strategies import STRATEGY_NAMES, GeneratedStrategy, build_strategy
from tests.test_rotation_fakes import (  # noqa: F401  (fixtures)
    ADMIN_SECRET, PROJECT, REGION, FakeOpenAI, Service, aws, fake_openai,
)

# ---------------------------------------------------------------- configuration


def test_every_setting_has_a_default() -> None:
    c = load_config({})
    assert c.grace_hours == 24 and c.default_strategy is None and c.strategy_map == {}
    assert c.openai_base_url == DEFAULT_OPENAI_BASE_URL and c.openai_admin_secret_id is None
    assert c.verify_attempts == 3 and c.stale_pending_minutes == 60


def test_settings_are_read_from_the_environment() -> None:
    c = load_config({
        "ROTATION_GRACE_HOURS": "0", "ROTATION_STRATEGY_MAP": json.dumps({"a/b": "openai"}),
        "ROTATION_STRATEGY": "generated", "OPENAI_ADMIN_BASE_URL": "http://127.0.0.1:9/v1/",
    })
    assert c.grace_hours == 0
    assert c.strategy_for("a/b") == "openai" and c.strategy_for("other") == "generated"
    assert c.openai_base_url == "http://127.0.0.1:9/v1"


def test_invalid_settings_are_all_reported_without_keyerror() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config({"ROTATION_GRACE_HOURS": "soon", "ROTATION_STRATEGY_MAP": "[1]",
                     "OPENAI_ADMIN_BASE_URL": "http://api.openai.com/v1", "ROTATION_VERIFY_ATTEMPTS": "0"})
    message = str(exc.value)
    for key in ("ROTATION_GRACE_HOURS", "ROTATION_STRATEGY_MAP", "OPENAI_ADMIN_BASE_URL", "ROTATION_VERIFY_ATTEMPTS"):
        assert key in message


def test_a_secret_without_a_strategy_is_refused() -> None:
    with pytest.raises(ConfigError):
        Config(strategy_map={"a": "openai"}).strategy_for("b")


def test_strategy_names_match_the_fleet_model() -> None:
    assert set(STRATEGY_NAMES) == set(ROTATION_STRATEGIES)
    with pytest.raises(ConfigError):
        build_strategy("stripe", None, Config())


# ---------------------------------------------------------------- the OpenAI adapter


@pytest.fixture()
def adapter(aws: Any, fake_openai: FakeOpenAI) -> OpenAIStrategy:
    aws.create_secret(Name=ADMIN_SECRET, SecretString=json.dumps({"admin_key": fake_openai.admin_key, "project_id": PROJECT}))
    config = Config(openai_base_url=fake_openai.base_url, openai_admin_secret_id=ADMIN_SECRET, verify_attempts=3)
    return OpenAIStrategy(aws, config, sleep=lambda s: None)


def test_first_rotation_creates_a_service_account_later_ones_reuse_it(adapter: OpenAIStrategy, fake_openai: FakeOpenAI) -> None:
    first = adapter.create({"api_key": "sk-handwritten"}, label="agents/dev/a/openai 1")
    assert first["project_id"] == PROJECT and first["service_account_id"] in fake_openai.service_accounts
    second = adapter.create(first, label="agents/dev/a/openai 2")
    assert second["service_account_id"] == first["service_account_id"] and second["key_id"] != first["key_id"]
    fake_openai.service_accounts.clear()  # deleted at the provider: fall back to a new account
    third = adapter.create(second, label="agents/dev/a/openai 3")
    assert third["service_account_id"] != first["service_account_id"]


def test_verify_retries_a_bounded_number_of_times(adapter: OpenAIStrategy, fake_openai: FakeOpenAI) -> None:
    key = fake_openai.mint_initial()
    fake_openai.fail["verify"] = 2
    adapter.test(key)  # third attempt succeeds
    fake_openai.fail["verify"] = 3
    with pytest.raises(ProviderError) as exc:
        adapter.test(key)
    assert exc.value.status == 500


def test_revoke_is_idempotent_and_needs_ids(adapter: OpenAIStrategy, fake_openai: FakeOpenAI) -> None:
    key = fake_openai.mint_initial()
    adapter.revoke(credential.ref(key))
    adapter.revoke(credential.ref(key))  # 404: already gone, not an error
    assert not fake_openai.works(key["api_key"])
    with pytest.raises(Exception):
        adapter.revoke({"project_id": PROJECT})
    with pytest.raises(Exception):
        adapter.revoke({"project_id": PROJECT, "key_id": "../admin_api_keys/x"})  # no path injection


def test_the_adapter_needs_its_admin_secret(aws: Any) -> None:
    with pytest.raises(ConfigError):
        OpenAIStrategy(aws, Config()).create({}, label="x")


class _Redirect(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        _Redirect.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_redirects_are_not_followed_with_the_bearer_token(aws: Any) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        aws.create_secret(Name=ADMIN_SECRET, SecretString=json.dumps({"admin_key": "sk-admin-x", "project_id": PROJECT}))
        s = OpenAIStrategy(aws, Config(openai_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
                                       openai_admin_secret_id=ADMIN_SECRET, verify_attempts=1))
        with pytest.raises(ProviderError) as exc:
            s.test({"api_key": "sk-new"})
        assert exc.value.status == 302 and _Redirect.hits == ["/v1/models"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_generated_values_have_the_configured_shape(aws: Any) -> None:
    s = GeneratedStrategy(aws, 40)
    value = s.create({}, label="x")
    s.test(value)
    assert len(value["api_key"]) == 40 and value["api_key"].isalnum()
    with pytest.raises(Exception):
        s.test({"api_key": "short"})


# ---------------------------------------------------------------- entry points


def test_lambda_handler_reads_its_environment(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "agents/dev/billing/ledger-api"
    aws.create_secret(Name=name, SecretString=json.dumps({"api_key": "x" * 48}))
    Service(aws).enable_rotation(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("ROTATION_STRATEGY_MAP", json.dumps({name: "generated"}))
    result = lambda_handler({"Action": "rotateNow", "SecretId": name}, None)
    assert result["status"] == "rotated"
    value = credential.parse(aws.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
    assert value["api_key"] != "x" * 48
    monkeypatch.setenv("ROTATION_GRACE_HOURS", "-1")
    with pytest.raises(ConfigError):
        lambda_handler({"Action": "rotateNow", "SecretId": name}, None)


def test_unknown_events_and_disabled_rotation_are_refused(aws: Any) -> None:
    aws.create_secret(Name="s", SecretString="v")
    deps = Deps(client=aws, config=Config(default_strategy="generated"))
    with pytest.raises(GuardError):
        handle({"Action": "dance"}, deps)
    with pytest.raises(GuardError):
        handle({"Step": "createSecret", "SecretId": "s"}, deps)
    with pytest.raises(GuardError):
        handle({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": "t" * 36}, deps)  # rotation disabled
    with pytest.raises(GuardError):
        handle({"Action": "rotateNow", "SecretId": "s"}, deps)


# ---------------------------------------------------------------- the age reporter


@pytest.fixture()
def faithful_version_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers ListSecretVersionIds with `now` as every CreatedDate; AWS gives the version's date."""
    from moto.secretsmanager.models import SecretsManagerBackend

    def list_secret_version_ids(self: Any, secret_id: str) -> str:
        secret = self.secrets[secret_id]
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "Versions": [
            {"VersionId": vid, "VersionStages": v["version_stages"], "CreatedDate": v["createdate"]}
            for vid, v in secret.versions.items()]})

    monkeypatch.setattr(SecretsManagerBackend, "list_secret_version_ids", list_secret_version_ids)


def test_age_reporter_publishes_days_since_the_current_version(aws: Any, faithful_version_dates: None) -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    def tags(agent: str, env: str = "dev") -> list[dict[str, str]]:
        return [{"Key": "managed-by", "Value": "agentfleet"}, {"Key": "environment", "Value": env},
                {"Key": "agent", "Value": agent}]

    aws.create_secret(Name="agents/dev/billing/stripe", SecretString="{}", Tags=tags("billing"))
    aws.create_secret(Name="agents/dev/crm/salesforce", SecretString="{}", Tags=tags("crm"))
    aws.create_secret(Name="agents/dev/crm/unmanaged", SecretString="{}")  # not ours: skipped
    aws.create_secret(Name="agents/prod/crm/salesforce", SecretString="{}", Tags=tags("crm", "prod"))
    now = datetime(2025, 3, 1, tzinfo=timezone.utc)
    backend = secretsmanager_backends["123456789012"][REGION]
    for v in backend.secrets["agents/dev/billing/stripe"].versions.values():
        v["createdate"] = int((now - timedelta(days=31)).timestamp())
    for v in backend.secrets["agents/dev/crm/salesforce"].versions.values():
        v["createdate"] = int((now - timedelta(days=2)).timestamp())
    cw = boto3.client("cloudwatch", region_name=REGION)
    env = {"AGE_SECRET_PREFIX": "agents/dev/", "AGE_ENVIRONMENT": "dev", "ROTATION_METRICS_NAMESPACE": "AgentFleet/dev/Rotation"}
    result = age.report(aws, cw, env, lambda: now)
    assert result == {"secrets": 2, "oldest_days": 31.0}
    got = {}
    for agent, cred in (("billing", "stripe"), ("crm", "salesforce")):
        stats = cw.get_metric_statistics(
            Namespace="AgentFleet/dev/Rotation", MetricName=age.METRIC_NAME, StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(hours=1), Period=3600, Statistics=["Maximum"],
            Dimensions=[{"Name": "Agent", "Value": agent}, {"Name": "Credential", "Value": cred}])
        got[agent] = [d["Maximum"] for d in stats["Datapoints"]]
    assert got == {"billing": [31.0], "crm": [2.0]}


def test_age_reporter_needs_its_settings(aws: Any) -> None:
    with pytest.raises(ConfigError):
        age.report(aws, None, {}, lambda: datetime.now(timezone.utc))

