"""Real local servers for the rehearsal: moto in server mode and an OpenBao dev server.

Both listen on a free 127.0.0.1 port only, start within a bound (or fail with their log), get
SIGTERM if this process dies (Linux), and are always stopped by `local_servers()`. The root
token is random per run and never printed (logs are scrubbed of it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

START_TIMEOUT_S = 30.0
LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not start (its scrubbed log is part of the message)."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _binary(name: str) -> Path:
    """`name` next to this interpreter (the project's .venv/bin), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return here
    found = shutil.which(name)
    if not found:
        raise ServerError(f"{name} not found next to {sys.executable} or on PATH: run scripts/setup.sh")
    return Path(found)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill after 10 s: a server started for a run never outlives it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _get(url: str) -> tuple[int, bytes] | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback only
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError):
        return None


def _start(cmd: list[str], env: dict[str, str], log_path: Path, ready: str, check: Callable[[tuple[int, bytes] | None], bool],
           secret: str | None = None) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=log_path.parent,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if check(_get(ready)):
            return proc
        time.sleep(0.1)
    exited = proc.poll()
    stop_process(proc)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if secret:
        text = text.replace(secret, "<root-token>")
    why = f"exited with code {exited}" if exited is not None else f"not ready after {START_TIMEOUT_S:.0f}s"
    raise ServerError(f"{cmd[0]} {why}. Log:\n{text[-3000:]}")


@dataclass(frozen=True)
class Servers:
    aws_endpoint: str
    """moto_server's base URL: every AWS service on one port."""
    vault_address: str
    vault_token: str
    """Root token of the dev server (random per run; never printed)."""
    account_id: str
    region: str


def _base_env(workdir: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "LANG": "C.UTF-8"}


@contextlib.contextmanager
def local_servers(account_id: str, region: str) -> Iterator[Servers]:
    """Start moto (as `account_id`) and OpenBao on loopback; stop both on exit, whatever happens."""
    workdir = Path(tempfile.mkdtemp(prefix="agentfleet-rehearse-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        moto_port = free_loopback_port()
        env = _base_env(workdir) | {"MOTO_ACCOUNT_ID": account_id, "AWS_DEFAULT_REGION": region}
        procs.append(_start(
            [str(_binary("moto_server")), "-H", LOOPBACK, "-p", str(moto_port)], env, workdir / "moto.log",
            f"http://{LOOPBACK}:{moto_port}/moto-api/data.json", lambda r: r is not None and r[0] == 200,
        ))
        aws = f"http://{LOOPBACK}:{moto_port}"
        # Lambda code cannot run without Docker: register functions, invoke nothing (the rehearsal
        # runs the rotation handler in-process with each function's own configuration).
        req = urllib.request.Request(f"{aws}/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()  # noqa: S310 - loopback only

        token = secrets.token_urlsafe(24)
        bao_port = free_loopback_port()
        procs.append(_start(
            [str(_binary("bao")), "server", "-dev", f"-dev-root-token-id={token}",
             f"-dev-listen-address={LOOPBACK}:{bao_port}", "-dev-no-store-token"],
            _base_env(workdir) | {"BAO_LOG_LEVEL": "warn"}, workdir / "openbao.log",
            f"http://{LOOPBACK}:{bao_port}/v1/sys/health", lambda r: r is not None and r[0] == 200, secret=token,
        ))
        yield Servers(aws, f"http://{LOOPBACK}:{bao_port}", token, account_id, region)
    finally:
        for p in reversed(procs):
            stop_process(p)
        shutil.rmtree(workdir, ignore_errors=True)
