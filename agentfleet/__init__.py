"""agentfleet: one least-privilege identity per AI agent, as Pulumi code.

    from agentfleet import AgentFleet, AgentFleetArgs, load_fleet, StackSettings

Importing this package is cheap and Pulumi-free: the names below that need Pulumi
(`AgentFleet`, `AgentFleetArgs`, `ProviderSet`, `providers_from_config`) load the component
resources (`agentfleet.components`) on first use, so the CLI's `validate`, `plan`, `audit` and
`diff` never import a provider SDK. Layers (docs/architecture.md):

- `agentfleet.core`       Pulumi-free model, loader, settings, naming, IAM/Vault documents, plans
- `agentfleet.review`     audit, diff, scan (Pulumi-free)
- `agentfleet.components` the Pulumi component resources (the repository's `components/` folder)
- `agentfleet.policy`     the CrossGuard policy rules (the pack folder is the repository's `policy/`)
- `agentfleet.runner`     run a Pulumi program offline under mocks; apply the policy pack to it
- `agentfleet.cli`        the `agentfleet` command
- `agentfleet.rotation`   the rotation Lambda's code (stdlib + boto3 only)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from agentfleet.core import naming
from agentfleet.core.loader import FleetError, build_fleet, load_fleet, parse_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import SettingsError, StackSettings, load_stack_settings, settings_from_config

__version__ = "0.2.0"

if TYPE_CHECKING:
    from agentfleet.components.fleet import AgentFleet, AgentFleetArgs
    from agentfleet.components.providers import ProviderSet, providers_from_config, stack_settings

_LAZY = {
    "AgentFleet": "agentfleet.components.fleet",
    "AgentFleetArgs": "agentfleet.components.fleet",
    "ProviderSet": "agentfleet.components.providers",
    "providers_from_config": "agentfleet.components.providers",
    "stack_settings": "agentfleet.components.providers",
}

__all__ = [
    "AgentFleet", "AgentFleetArgs", "Fleet", "FleetError", "ProviderSet", "SettingsError", "StackSettings",
    "build_fleet", "load_fleet", "load_stack_settings", "naming", "parse_fleet", "providers_from_config",
    "settings_from_config", "stack_settings", "__version__",
]


def __getattr__(name: str) -> Any:
    """Load the Pulumi component layer only when a program asks for it."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agentfleet' has no attribute {name!r}")
