"""The Pulumi program: stack config -> settings -> validated fleet -> AgentFleet -> outputs.

The library lives in the `agentfleet` package (components/ holds its Pulumi component
resources). Offline, `agentfleet preview` runs this very file under Pulumi's mock runtime.
"""

from pathlib import Path

import pulumi

from agentfleet import AgentFleet, AgentFleetArgs, load_fleet, naming, providers_from_config, stack_settings
from agentfleet.core.project import FLEET_FILE_KEY, fleet_file_path
from agentfleet.core.settings import PROJECT

settings = stack_settings()
project_dir = Path(pulumi.get_root_directory())  # where Pulumi.yaml is, as `pulumi up` runs it
fleet = AgentFleet(
    naming.FLEET_COMPONENT,
    AgentFleetArgs(
        # The stack's fleet: its environment's overrides applied, the stack's rules checked.
        fleet=load_fleet(fleet_file_path(project_dir, pulumi.Config(PROJECT).get(FLEET_FILE_KEY)), settings),
        settings=settings,
        providers=providers_from_config(settings),
    ),
)

pulumi.export("environment", settings.environment)
pulumi.export("agents", fleet.agent_outputs)
pulumi.export("kmsKeyArn", fleet.kms_key_arn)
pulumi.export("kmsKeyAlias", fleet.environment.key_alias)
pulumi.export("vaultMount", fleet.environment.kv_mount)
pulumi.export("vaultAwsAuthPath", fleet.environment.aws_auth_path)
for name, value in fleet.extra_outputs.items():  # outputs of extensions (rotation, monitoring)
    pulumi.export(name, value)
