"""HTTP downloads that resume where they stopped and check what they got."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from .._progress import progress_bar
from ._checksums import CHUNK, DownloadError, mismatch, record_verified, warn_unpinned

logger = logging.getLogger("celltwin")


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
        written, expected_total, digests = _receive(
            resp, url, part, offset, size=size, progress=progress
        )
    if expected_total is not None and written < expected_total:
        raise DownloadError(
            f"download of {url} stopped after {written} of {expected_total} bytes; the partial "
            f"file {part} is kept: call again to resume"
        )
    problem = mismatch(dest.name, digests, sha256=sha256, md5=md5)
    if size is not None and written != size:
        problem = f"{url} gave {written} bytes but {size} are expected"
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{problem} (from {url}). The download was removed; try again, and if this "
            "persists the provider changed the file and the registry entry needs updating."
        )
    if sha256 is None and md5 is None:
        warn_unpinned(url, digests)
    os.replace(part, dest)
    record_verified(dest, digests)
    logger.info("downloaded %s (%d bytes) to %s", url, written, dest)
    return dest


def _receive(
    resp: http.client.HTTPResponse,
    url: str,
    part: Path,
    offset: int,
    *,
    size: int | None,
    progress: bool,
) -> tuple[int, int | None, dict[str, str]]:
    """Write the response to ``part`` (appended when the server resumes at ``offset``).

    Returns the bytes the part file now holds, the total expected (``None`` when unknown) and
    the digests of the whole part file.
    """
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
            while chunk := fh.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
    written = offset
    with (
        open(part, mode) as out,
        progress_bar(
            total=expected_total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            enabled=progress,
            leave=False,
        ) as bar,
    ):
        try:
            while chunk := resp.read(CHUNK):
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
    return written, expected_total, {name: h.hexdigest() for name, h in hashers.items()}
