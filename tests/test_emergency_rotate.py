"""`emergency-rotate` performs the rotation through the function (boto3 Lambda invoke).

The Lambda client is replaced by one that records the call and answers like the handler; the
rehearsal (tests/test_rehearse.py) runs the real handler behind it end to end.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentfleet.cli import cmd_rotation
from agentfleet.cli.main import main


class FakeLambda:
    def __init__(self, *answers: tuple[dict[str, Any], str | None]):
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert InvocationType == "RequestResponse"
        self.calls.append((FunctionName, json.loads(Payload)))
        body, error = self.answers.pop(0)
        r: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}
        if error:
            r["FunctionError"] = error
        return r


def run(root: Path, fake: FakeLambda, monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cmd_rotation, "lambda_client", lambda settings: fake)
    out, err = io.StringIO(), io.StringIO()
    code = main(["emergency-rotate", str(root / "agents.yaml"), "--agent", "research", "--credential", "openai",
                 "--stack", "dev", *extra], out, err)
    return code, out.getvalue(), err.getvalue()


OK = {"status": "rotated", "secret": "agents/dev/research/openai", "token": "t1", "emergency": True, "vault": "in_sync", "unrevoked": []}


def test_it_invokes_the_credentials_function_with_rotate_now(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLambda((OK, None))
    code, out, err = run(root, fake, monkeypatch)
    assert code == 0, err
    assert fake.calls == [("agents-dev-research-rotation",
                           {"Action": "rotateNow", "SecretId": "agents/dev/research/openai", "Emergency": True})]
    assert "rotated research/openai" in out and "old key(s) revoked" in out


def test_an_incomplete_emergency_exits_1_with_the_follow_up(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLambda(({"errorType": "EmergencyIncomplete", "errorMessage": "old key(s) ['key_1'] are NOT revoked"}, "Unhandled"))
    code, out, err = run(root, fake, monkeypatch)
    assert code == 1 and "NOT finished: EmergencyIncomplete" in err and "--follow-up" in err


def test_follow_up_runs_the_forced_sweep(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLambda(({"errorType": "EmergencyIncomplete", "errorMessage": "x"}, "Unhandled"),
                      ({"status": "ok", "revoked": {"agents/dev/research/openai": ["key_1"]}, "vault": {}}, None))
    code, out, err = run(root, fake, monkeypatch, "--follow-up")
    assert code == 0, err
    assert fake.calls[1] == ("agents-dev-research-rotation",
                             {"Action": "revokeDue", "SecretId": "agents/dev/research/openai", "Force": True})


def test_unrevoked_keys_are_a_failure(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(root, FakeLambda(({**OK, "unrevoked": ["key_9"]}, None)), monkeypatch)
    assert code == 1 and "old key(s) not revoked" in err


def test_dry_run_calls_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLambda()
    code, out, _ = run(root, fake, monkeypatch, "--dry-run")
    assert code == 0 and fake.calls == [] and "dry run: would invoke agents-dev-research-rotation" in out
