"""A real PostgreSQL server for the tests: initdb into a temp dir, listen on 127.0.0.1 only, stop at the end.

Debian's `postgresql` package provides the binaries (`scripts/setup.sh` installs it when absent).
PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to `nobody` and the
server runs as that user; the data directory is removed when the server stops. fsync is off:
the cluster lives for one test session.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

MASTER = "agentfleet_master"
START_TIMEOUT = 30.0


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: run scripts/setup.sh")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    root: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def _run_as(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        nobody = pwd.getpwnam("nobody")
        return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def start(self) -> "PostgresServer":
        bindir = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="agentfleet-pg-"))
        data, sock = self.root / "data", self.root / "sock"
        sock.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        as_user = self._run_as()
        if as_user:
            for p in (self.root, sock, pwfile):
                os.chown(p, as_user["user"], as_user["group"])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", MASTER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, env=env, timeout=120, **as_user,
        )
        pwfile.unlink()
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
             "-c", f"unix_socket_directories={sock}", "-c", "fsync=off", "-c", "full_page_writes=off",
             "-c", "synchronous_commit=off", "-c", "password_encryption=scram-sha-256", "-c", "max_connections=50"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **as_user,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.connect(MASTER, self.password).close()
                return self
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PostgreSQL did not start")
                time.sleep(0.1)

    def connect(self, user: str, password: str, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=user, password=password,
                               connect_timeout=3, sslmode="disable")

    def can_login(self, user: str, password: str, dbname: str = "postgres") -> bool:
        try:
            with self.connect(user, password, dbname) as conn:
                row = conn.execute("SELECT current_user").fetchone()
                return row is not None and row[0] == user
        except psycopg.OperationalError:
            return False

    def admin(self, *statements: str) -> None:
        with self.connect(MASTER, self.password) as conn:
            conn.autocommit = True
            for sql in statements:
                conn.execute(sql.encode())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
