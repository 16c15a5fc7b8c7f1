"""The Lambda archive is byte-identical across builds, checkouts and file metadata."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

from agentfleet.rotation import package


def test_two_builds_give_identical_bytes_and_hash() -> None:
    a, b = package.build_zip(), package.build_zip()
    assert a == b
    assert package.sha256_hex(a) == package.sha256_hex(b)
    assert package.source_code_hash(a) == package.source_code_hash(b)


def test_file_metadata_does_not_leak_into_the_archive(tmp_path: Path) -> None:
    copy = tmp_path / "rotation"
    shutil.copytree(package.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for i, p in enumerate(sorted(copy.rglob("*.py"))):
        os.utime(p, (1_700_000_000 + i * 977, 1_700_000_000 + i * 977))
        p.chmod(0o755 if i % 2 else 0o600)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"junk")
    (copy / "notes.txt").write_text("not code")
    assert package.build_zip(copy) == package.build_zip()


def test_entries_are_sorted_with_fixed_time_and_mode() -> None:
    zf = zipfile.ZipFile(io.BytesIO(package.build_zip()))
    names = zf.namelist()
    assert names == sorted(names)
    assert "rotation/handler.py" in names and "rotation/strategies.py" in names
    assert all(n.startswith("rotation/") and n.endswith(".py") for n in names)
    for info in zf.infolist():
        assert info.date_time == package.ZIP_EPOCH
        assert info.external_attr >> 16 == 0o100644
    assert zf.testzip() is None


def test_a_changed_source_changes_the_hash(tmp_path: Path) -> None:
    copy = tmp_path / "rotation"
    shutil.copytree(package.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "handler.py").write_text((copy / "handler.py").read_text() + "\n# changed\n")
    assert package.sha256_hex(package.build_zip(copy)) != package.sha256_hex(package.build_zip())


def test_write_zip_is_stable_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "build" / "rotation.zip"
    first = package.write_zip(out)
    mtime = out.stat().st_mtime_ns
    assert package.write_zip(out) == first
    assert out.stat().st_mtime_ns == mtime  # unchanged bytes are not rewritten
    assert package.main([str(tmp_path / "x.zip")]) == 0
    assert (tmp_path / "x.zip").read_bytes() == out.read_bytes()


def test_the_archive_imports_on_its_own_as_lambda_loads_it(tmp_path: Path) -> None:
    """Lambda imports `rotation.handler` from the zip's root: every import inside the package must be
    relative (an `agentfleet.rotation...` import would only work where the project is installed)."""
    import subprocess
    import sys

    with zipfile.ZipFile(io.BytesIO(package.build_zip())) as zf:
        zf.extractall(tmp_path)
    probe = (
        "import sys, importlib\n"
        "sys.modules['agentfleet'] = None  # importing it now raises ImportError\n"
        "for m in ('rotation.handler', 'rotation.age', 'rotation.openai_admin', 'rotation.providers', 'rotation.postgres',"
        " 'rotation.pickup'):\n"
        "    importlib.import_module(m)\n"
        "print(sorted(k for k in sys.modules if k.startswith('rotation')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rotation.handler" in done.stdout and "rotation.http_client" in done.stdout


def test_one_http_client_in_the_rotation_package() -> None:
    """Every provider adapter and the Vault writer use `http_client`: one place refuses redirects and
    keeps response text out of errors."""
    users = sorted(p.name for p in package.PACKAGE_DIR.glob("*.py") if "urllib.request" in p.read_text())
    assert users == ["http_client.py"]
    for name in ("openai_admin.py", "providers.py", "vault_sync.py"):
        assert "JsonClient" in (package.PACKAGE_DIR / name).read_text(), name


def test_the_http_client_refuses_redirects_and_keeps_messages_out() -> None:
    import json as _json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from agentfleet.rotation.errors import ProviderError
    from agentfleet.rotation.http_client import JsonClient

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            seen.append(self.path)
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:9/steal")
                self.end_headers()
                return
            body = _json.dumps({"error": {"code": "bad_key", "message": "key sk-abc123 is invalid"}}).encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = JsonClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
        try:
            client.call("probe", "GET", "/redirect", headers={"Authorization": "Bearer sk-abc123"})
            raise AssertionError("a redirect was followed")
        except ProviderError as exc:
            assert exc.status == 302
        try:
            client.call("probe", "GET", "/fail")
            raise AssertionError("no error")
        except ProviderError as exc:
            assert (exc.status, exc.code) == (401, "bad_key") and "sk-abc123" not in str(exc)
        assert seen == ["/redirect", "/fail"]
    finally:
        server.shutdown()
        server.server_close()
