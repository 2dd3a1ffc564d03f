"""Checksums of dataset files: computed once, remembered beside the file, compared with the pins."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

logger = logging.getLogger("celltwin")

CHUNK = 1 << 20
_VERIFIED_SUFFIX = ".verified.json"


class DownloadError(OSError):
    """A dataset file could not be obtained (unreachable host, HTTP error, bad checksum)."""


def hash_file(path: Path, algorithms: tuple[str, ...] = ("sha256", "md5")) -> dict[str, str]:
    """Hex digests of a file, read in chunks."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def mismatch(name: str, got: dict[str, str], *, sha256: str | None, md5: str | None) -> str:
    """Describe the first pinned checksum that ``got`` does not match, or return ``""``."""
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None and got[algo] != expected.lower():
            return f"{algo} mismatch for {name}: expected {expected.lower()}, got {got[algo]}"
    return ""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _VERIFIED_SUFFIX)


def record_verified(path: Path, digests: dict[str, str]) -> None:
    """Remember a file's digests beside it, with its size and modification time."""
    st = path.stat()
    _sidecar(path).write_text(
        json.dumps({**digests, "size": st.st_size, "mtime_ns": st.st_mtime_ns}), encoding="utf-8"
    )


def verify_cached(path: Path, *, sha256: str | None, md5: str | None, size: int | None) -> None:
    """Check a file already in the cache; hashes are computed once and remembered beside it."""
    st = path.stat()
    if size is not None and st.st_size != size:
        raise DownloadError(
            f"{path} has {st.st_size} bytes but {size} are expected; delete it to download it "
            "again, or replace it with the right file"
        )
    if sha256 is None and md5 is None:
        return
    side = _sidecar(path)
    if side.exists():
        try:
            rec = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            rec = {}
        if rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
            if (sha256 is None or rec.get("sha256") == sha256.lower()) and (
                md5 is None or rec.get("md5") == md5.lower()
            ):
                return
    digests = hash_file(path)
    if problem := mismatch(path.name, digests, sha256=sha256, md5=md5):
        raise DownloadError(
            f"{problem}. The file {path} is not the expected one: delete it to download it "
            "again, or replace it with the right file."
        )
    record_verified(path, digests)


def warn_unpinned(what: str, digests: dict[str, str]) -> None:
    """Log the SHA-256 of a file no checksum is pinned for, so it can be pinned."""
    logger.warning(
        "no checksum is pinned for %s; its sha256 is %s (pin it in the dataset registry)",
        what,
        digests["sha256"],
    )
