"""Shared fixtures: the repo root, the sample fleet and its dev stack settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.loader import load_fleet
from components.model import Fleet
from components.settings import StackSettings, load_stack_settings

pytest_plugins = ["tests.openbao_server"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_fleet() -> Fleet:
    return load_fleet(ROOT / "agents.yaml")


@pytest.fixture(scope="session")
def dev_settings() -> StackSettings:
    return load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev")
