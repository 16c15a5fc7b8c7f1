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
