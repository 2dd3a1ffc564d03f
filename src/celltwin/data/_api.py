"""Public functions over the dataset registry: list, fetch (build and write), load."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import anndata
import pandas as pd
from anndata import AnnData

from .._keys import UNS_KEY
from .._settings import cache_dir as default_cache
from .._settings import shared_dir
from ..io import RankSignatures, write_signatures
from ._download import DownloadError, fetch_source
from ._priors import fetch_prior
from ._registry import DatasetEntry, entries, get_entry

logger = logging.getLogger("celltwin")

_BUILT = "built"


def _source_ready(url: str, filename: str, cache: Path) -> bool:
    if url.startswith("shared:"):
        return (shared_dir() / url.removeprefix("shared:")).is_file()
    return (cache / filename).is_file()


def _ready(entry: DatasetEntry, cache: Path) -> bool:
    """Whether ``entry`` can be loaded now without a download: built by :func:`load` already,
    or its source files are here (one of them when the sources are alternatives)."""
    if (cache / _BUILT / f"{entry.name}.h5ad").is_file():
        return True
    ready = [_source_ready(s.url, s.filename, cache) for s in entry.sources]
    return any(ready) if entry.source_mode == "first_available" else all(ready)


def list_datasets() -> pd.DataFrame:
    """All registered datasets, one row each.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``kind`` (``anndata`` / ``signatures`` / ``prior``), ``shape`` (``"n x m"`` of the
        built data, ``""`` when unknown), ``offline`` (a source works without internet access),
        ``ready`` (loads without a download: built by :func:`load` already, or every source
        file, for alternative sources one of them, is in the shared folder or the download
        cache), ``sources`` (addresses, ``; ``-separated) and ``description``.
    """
    cache = default_cache()
    rows = []
    for e in entries():
        rows.append(
            {
                "name": e.name,
                "kind": e.kind,
                "shape": f"{e.shape[0]} x {e.shape[1]}" if e.shape else "",
                "offline": e.available_offline,
                "ready": _ready(e, cache),
                "sources": "; ".join(s.url for s in e.sources),
                "description": e.description,
            }
        )
    columns = ["name", "kind", "shape", "offline", "ready", "sources", "description"]
    return pd.DataFrame(rows, columns=columns)


def _build(
    entry: DatasetEntry, *, cache_dir: str | os.PathLike[str] | None, progress: bool, force: bool
) -> AnnData | RankSignatures:
    if entry.build is None:
        raise ValueError(f"dataset {entry.name!r} has no builder; it cannot be fetched")
    if entry.source_mode == "first_available":
        paths = [_first_available(entry, cache_dir=cache_dir, progress=progress, force=force)]
    else:
        paths = [
            fetch_source(s, cache_dir=cache_dir, progress=progress, force=force)
            for s in entry.sources
        ]
    logger.info("building %s from %d file(s)", entry.name, len(paths))
    result = entry.build(paths)
    expected = AnnData if entry.kind == "anndata" else RankSignatures
    if not isinstance(result, expected):
        raise TypeError(
            f"builder of {entry.name!r} returned {type(result).__name__}, "
            f"expected {expected.__name__} for kind {entry.kind!r}"
        )
    return result


def _first_available(
    entry: DatasetEntry, *, cache_dir: str | os.PathLike[str] | None, progress: bool, force: bool
) -> Path:
    """Fetch the first of ``entry``'s alternative sources that can be had; say why others failed."""
    failures = []
    for source in entry.sources:
        try:
            return fetch_source(source, cache_dir=cache_dir, progress=progress, force=force)
        except (DownloadError, OSError) as err:
            logger.info(
                "source %s of %s not available (%s); trying the next", source.url, entry.name, err
            )
            failures.append(f"- {source.url}: {err}")
    raise DownloadError(
        f"none of the sources of dataset {entry.name!r} could be fetched:\n" + "\n".join(failures)
    )


def _dataset_record(entry: DatasetEntry) -> dict[str, object]:
    return {
        "name": entry.name,
        "version": entry.build_id(),
        "citation": entry.citation,
        "sources": [s.url for s in entry.sources],
    }


def _check_out(entry: DatasetEntry, out: Path) -> None:
    if entry.kind == "anndata" and out.suffix != ".h5ad":
        raise ValueError(f"'out' for dataset {entry.name!r} must end in .h5ad (got {out})")
    if entry.kind == "signatures" and out.suffix in (".h5ad", ".csv", ".tsv"):
        raise ValueError(
            f"'out' for signature dataset {entry.name!r} must be a .json.gz file (one context) "
            f"or a folder (got {out})"
        )


def _write_atomic(result: AnnData | RankSignatures, out: Path) -> None:
    """Write to a temporary name beside ``out``, then rename: nothing partial is left."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        staged = tmp / out.name
        if isinstance(result, AnnData):
            result.write_h5ad(staged)
        else:
            write_signatures(result, staged)
        if out.is_dir() and staged.is_dir():
            # A folder cannot replace a non-empty folder in one rename: move the old one aside.
            old = tmp / (out.name + ".old")
            os.replace(out, old)
            os.replace(staged, out)
        else:
            os.replace(staged, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(
    name: str,
    *,
    out: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Fetch a dataset's sources, build the canonical data and write it to ``out``.

    Prior-knowledge files (kind ``prior``: ``go``, ``string``, ``dorothea``, ``progeny`` and the
    gene-set collections) need no build: the file is taken from the shared folder when it is
    there, else downloaded into the cache (checked against its pinned SHA-256), where the
    readers of :mod:`celltwin.priors` find it; ``out`` is optional for them (a copy).

    Parameters
    ----------
    name
        A name from :func:`list_datasets`.
    out
        Where to write: an ``.h5ad`` file for AnnData datasets; for signature datasets a
        ``.json.gz`` file (one context) or a folder (one ``<context>.json.gz`` per context);
        for priors, optionally, a copy of the file. Required except for priors.
        The file appears only once complete (written under a temporary name, then renamed).
    cache_dir
        Download cache; default ``CELLTWIN_CACHE`` or ``~/.cache/celltwin``.
    force
        Download the sources again and rebuild even if ``out`` exists. Without it an existing
        ``out`` is kept as is.
    progress
        Show download progress bars.

    Returns
    -------
    Path
        ``out`` (for a prior without ``out``: the file in the shared folder or the cache).
    """
    entry = get_entry(name)
    if entry.kind == "prior":
        where = None if out is None else Path(out)
        return fetch_prior(name, out=where, cache_dir=cache_dir, force=force, progress=progress)
    if out is None:
        raise ValueError(
            f"fetch({name!r}): 'out' is required for a dataset of kind {entry.kind!r}. "
            "Fix: pass out= (--out), e.g. an .h5ad path."
        )
    return _fetch(
        entry,
        Path(out),
        cache_dir=cache_dir,
        progress=progress,
        rebuild=force,
        redownload=force,
    )


def _fetch(
    entry: DatasetEntry,
    out: Path,
    *,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    rebuild: bool,
    redownload: bool,
) -> Path:
    _check_out(entry, out)
    if out.exists() and not rebuild:
        logger.info("%s exists; keeping it (pass force=True to rebuild)", out)
        return out
    result = _build(entry, cache_dir=cache_dir, progress=progress, force=redownload)
    if isinstance(result, AnnData):
        result.uns.setdefault(UNS_KEY, {})["dataset"] = _dataset_record(entry)
    _write_atomic(result, out)
    logger.info("wrote %s to %s", entry.name, out)
    return out


def load(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> AnnData:
    """Return a canonical AnnData dataset, building it once and keeping it in the cache.

    The built file is ``<cache>/built/<name>.h5ad``; it is rebuilt when the registry entry's
    ``version`` (or its build ``variant``, see :class:`DatasetEntry`) changes.

    Parameters
    ----------
    name
        A dataset of kind ``anndata`` (see :func:`list_datasets`).
    cache_dir
        Download cache; default ``CELLTWIN_CACHE`` or ``~/.cache/celltwin``.
    progress
        Show download progress bars.
    """
    entry = get_entry(name)
    if entry.kind == "prior":
        raise ValueError(
            f"dataset {name!r} is a prior-knowledge file; read it with celltwin.priors "
            f"(e.g. celltwin.priors.read_{name}()), after celltwin.data.fetch({name!r})"
        )
    if entry.kind != "anndata":
        raise ValueError(
            f"dataset {name!r} holds {entry.kind}; use celltwin.data.load_signatures({name!r})"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    built = cache / _BUILT / f"{name}.h5ad"
    _fetch(entry, built, cache_dir=cache, progress=progress, rebuild=False, redownload=False)
    adata = anndata.read_h5ad(built)
    version = adata.uns.get(UNS_KEY, {}).get("dataset", {}).get("version")
    if version != entry.build_id():
        logger.info(
            "cached build of %s is version %s, not %s; rebuilding", name, version, entry.build_id()
        )
        _fetch(entry, built, cache_dir=cache, progress=progress, rebuild=True, redownload=False)
        adata = anndata.read_h5ad(built)
    return adata


def load_signatures(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> RankSignatures:
    """Return a ranked-signature dataset (see :class:`celltwin.io.RankSignatures`).

    Parameters
    ----------
    name
        A dataset of kind ``signatures`` (see :func:`list_datasets`).
    cache_dir
        Download cache; default ``CELLTWIN_CACHE`` or ``~/.cache/celltwin``.
    progress
        Show download progress bars.
    """
    entry = get_entry(name)
    if entry.kind != "signatures":
        raise ValueError(f"dataset {name!r} holds {entry.kind}; use celltwin.data.load({name!r})")
    result = _build(entry, cache_dir=cache_dir, progress=progress, force=False)
    assert isinstance(result, RankSignatures)
    return result
