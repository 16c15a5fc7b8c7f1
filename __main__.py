"""The Pulumi program: stack config -> settings -> validated fleet -> AgentFleet -> outputs.

Everything else lives in `components/`. Offline, `python -m components preview` runs this very
file under Pulumi's mock runtime.
"""

from pathlib import Path

import pulumi

from components import naming
from components.fleet import FLEET_FILE_KEY, AgentFleet, AgentFleetArgs, fleet_file_path
from components.loader import load_fleet
from components.providers import providers_from_config
from components.settings import PROJECT, settings_from_config


def _config(key: str) -> str | None:
    namespace, _, name = key.partition(":")
    return pulumi.Config(namespace).get(name)


settings = settings_from_config(pulumi.get_stack(), _config)
fleet_file = fleet_file_path(Path(__file__).resolve().parent, pulumi.Config(PROJECT).get(FLEET_FILE_KEY))
fleet = AgentFleet(
    naming.FLEET_COMPONENT,
    AgentFleetArgs(fleet=load_fleet(fleet_file), settings=settings, providers=providers_from_config(settings)),
)

pulumi.export("environment", settings.environment)
pulumi.export("agents", fleet.agent_outputs)
pulumi.export("kmsKeyArn", fleet.kms_key_arn)
pulumi.export("kmsKeyAlias", fleet.environment.key_alias)
pulumi.export("vaultMount", fleet.environment.kv_mount)
pulumi.export("vaultAwsAuthPath", fleet.environment.aws_auth_path)
for name, value in fleet.extra_outputs.items():  # outputs of extensions (rotation, monitoring)
    pulumi.export(name, value)
