"""Shared fixtures. The suite tests the code on fixture fleets under `tests/`, never on the
repository's own `agents.yaml` / stack files (a team replaces those with its own).

`tests/project/` is the fixture Pulumi project (the former sample fleet and its stacks); every
test runs with it as the working directory, so the CLI and the program find it the way they find
a user's project. `REPO` is the source tree (code, docs, workflows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from agentfleet.core.loader import load_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings, load_stack_settings

pytest_plugins = ["tests.openbao_server"]

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "tests" / "project"
ROOT = PROJECT  # the fixture project: agents.yaml, Pulumi.<stack>.yaml, __main__.py


@pytest.fixture(scope="session", autouse=True)
def _in_fixture_project() -> Iterator[None]:
    before = os.getcwd()
    os.chdir(PROJECT)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def sample_fleet() -> Fleet:
    return load_fleet(ROOT / "agents.yaml")


@pytest.fixture(scope="session")
def dev_settings() -> StackSettings:
    return load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev")
