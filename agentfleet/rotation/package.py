"""Build the Lambda archive byte-identically: same sources, same bytes, same sha256.

Fixed timestamps (1980-01-01, the zip epoch), entries sorted by path, fixed permissions (0644),
fixed compression level, only `agentfleet/rotation/*.py` (no __pycache__, no editor files). Pulumi then sees
an unchanged archive hash and does not redeploy the functions on every `up`.

    python -m agentfleet.rotation.package OUT.zip      # writes the archive, prints its sha256
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--


def source_files(package_dir: Path = PACKAGE_DIR) -> list[tuple[str, Path]]:
    """(archive name, path) for every module of the package, sorted by archive name."""
    files = [(f"{package_dir.name}/{p.relative_to(package_dir).as_posix()}", p)
             for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files)


def build_zip(package_dir: Path = PACKAGE_DIR) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arcname, path in source_files(package_dir):
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            # Normalise line endings so a checkout with autocrlf builds the same bytes.
            data = path.read_bytes().replace(b"\r\n", b"\n")
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()


def cache_dir() -> Path:
    """Where the program writes the archive: a user cache, never next to the installed package
    (site-packages may be read-only and is shared). `AGENTFLEET_CACHE_DIR` overrides it."""
    explicit = os.environ.get("AGENTFLEET_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentfleet"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_code_hash(data: bytes) -> str:
    """Lambda's `source_code_hash` format: base64 of the raw SHA-256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def write_zip(out: Path, package_dir: Path = PACKAGE_DIR) -> str:
    data = build_zip(package_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_bytes() != data:
        out.write_bytes(data)
    return sha256_hex(data)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m agentfleet.rotation.package OUT.zip", file=sys.stderr)
        return 2
    print(write_zip(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
