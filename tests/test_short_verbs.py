"""The short verbs as users run them (`python -m agentfleet validate|plan|audit|diff`, one process per
verb): the same output as in-process, without the work a one-shot process does not need (the
`requests` import detect-secrets does, the interpreter's teardown); and the reuse/copy helpers
that keep one verb's repeated work cheap."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

from agentfleet.cli.main import main
from agentfleet.core import plan, reuse
from agentfleet.core.settings import StackSettings

from tests.conftest import REPO

PROJECT = REPO / "tests" / "project"
SAMPLE = PROJECT / "agents.yaml"


def _in_process(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _as_users_run_it(*argv: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered: the flush must happen
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "agentfleet", *argv]
    return subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, check=False, timeout=120)


def test_a_one_shot_verb_prints_what_the_in_process_verb_prints(tmp_path: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLE.read_text().replace("name: research", "name: Research", 1), encoding="utf-8")
    for argv in (("plan", str(SAMPLE), "--format", "json"), ("validate", str(SAMPLE), "--stack", "dev"),
                 ("audit", str(SAMPLE)), ("diff", str(SAMPLE), str(SAMPLE), "--format", "json"),
                 ("validate", str(bad)), ("plan", str(bad))):
        code, out, err = _in_process(*argv)
        run = _as_users_run_it(*argv)
        assert (run.returncode, run.stdout, run.stderr) == (code, out, err), argv
        assert out or err


def test_a_short_verb_runs_the_detectors_without_importing_requests() -> None:
    run = _as_users_run_it("validate", str(SAMPLE), "--stack", "dev", importtime=True)
    assert run.returncode == 0, run.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "detect_secrets.plugins.aws" in imported  # the role ARNs reached the detectors
    assert not {"requests", "urllib3"} & imported


def test_the_stand_in_for_requests_becomes_the_real_module() -> None:
    script = """
import sys
from agentfleet.core import secretlike
secretlike.defer_requests()
assert secretlike.looks_like_secret("AKIA" + "ABCDEFGHIJKLMNOP").kind == "AWS Access Key"
assert type(sys.modules["requests"]).__name__ == "_Deferred" and "urllib3" not in sys.modules
import detect_secrets.plugins.base as base
import requests
error = requests.exceptions.RequestException  # the first read imports the real module
assert type(sys.modules["requests"]).__name__ == "module" and "urllib3" in sys.modules
assert base.requests.exceptions.RequestException is error is sys.modules["requests"].exceptions.RequestException
from requests import Session
assert Session is sys.modules["requests.sessions"].Session
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert run.stdout.strip() == "ok", run.stderr


def test_within_a_scope_a_value_is_hashed_once_for_every_builder() -> None:
    class Counted:
        hashes = 0

        def __hash__(self) -> int:
            Counted.hashes += 1
            return 7

        def __eq__(self, other: object) -> bool:
            return self is other

    value, context = Counted(), object()
    with reuse.scope():
        for name in ("agent plan", "agent names", "reminders"):
            for _ in range(3):
                assert reuse.by_value(name, (context,), (value,), lambda: [name]) == [name]
        assert Counted.hashes == 1
    calls = []
    reuse.by_value("agent plan", (context,), (value,), lambda: calls.append(1))
    reuse.by_value("agent plan", (context,), (value,), lambda: calls.append(1))
    assert len(calls) == 2  # outside a scope nothing is kept


def test_the_plan_contract_is_a_copy_even_of_repeated_values(sample_fleet: Any, dev_settings: StackSettings) -> None:
    shared = ["a", {"b": [1, True, None, 2.5]}]
    copied = plan._plain({"x": shared, "y": shared, "z": (shared, "s")})
    assert copied == {"x": shared, "y": shared, "z": (shared, "s")}
    assert copied["x"] is not shared and copied["x"] is not copied["y"] and copied["x"][1] is not copied["y"][1]
    with reuse.scope():
        first, second = plan.build_plan(sample_fleet, dev_settings), plan.build_plan(sample_fleet, dev_settings)
        assert first == second
        a, b = first["agents"][0], second["agents"][0]
        assert a["iam_policy"] is not b["iam_policy"] and a["credentials"][0] is not b["credentials"][0]
        a["iam_policy"]["Statement"].clear()
        assert plan.build_plan(sample_fleet, dev_settings) == second


def test_a_shared_plan_hands_one_dict_per_agent_plan_within_a_scope(sample_fleet: Any, dev_settings: StackSettings) -> None:
    outside = [plan.build_plan(sample_fleet, dev_settings, shared=True) for _ in range(2)]
    assert outside[0] == outside[1] and outside[0]["agents"][0] is not outside[1]["agents"][0]
    with reuse.scope():
        first, second = (plan.build_plan(sample_fleet, dev_settings, shared=True) for _ in range(2))
        own = plan.build_plan(sample_fleet, dev_settings)
        assert first == second == own == outside[0]
        assert all(a is b for a, b in zip(first["agents"], second["agents"]))
        assert not any(a is b for a, b in zip(first["agents"], own["agents"]))
