"""Prior-knowledge files as datasets: ``celltwin data fetch go|string|dorothea|progeny|...``.

The files themselves (addresses, checksums, sizes) are described once, in
:data:`celltwin.priors.PRIOR_FILES`, where the readers of :mod:`celltwin.priors` find them (that
package sits below this one and cannot import it). Here each becomes a registry entry of kind
``prior``, fetched as every dataset file is (:func:`fetch_source`): from the shared folder when it
holds the file (checked against the pinned SHA-256), else downloaded into the cache, where the
readers look next.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..priors import PRIOR_FILES, PriorFile
from ._download import fetch_source
from ._registry import DatasetEntry, Source, register


def prior_sources(prior: PriorFile) -> tuple[Source, Source]:
    """The shared-folder and download sources of ``prior`` (the address read now: it follows
    ``CELLTWIN_PRIORS_URL``)."""

    def source(url: str, note: str) -> Source:
        return Source(url, prior.sha256, prior.filename, size=prior.size, note=note)

    return (
        source(f"shared:{prior.shared}", "the project's shared folder"),
        source(prior.url, f"derived from {prior.derived_from}"),
    )


def fetch_prior(
    name: str,
    *,
    out: Path | None,
    cache_dir: str | os.PathLike[str] | None,
    force: bool,
    progress: bool,
) -> Path:
    """The local file of prior ``name`` (shared folder, else cache, downloading it if needed),
    copied to ``out`` when one is given. See :func:`celltwin.data.fetch`."""
    shared, remote = prior_sources(PRIOR_FILES[name])
    try:
        path = fetch_source(shared, cache_dir=cache_dir, progress=progress)
    except FileNotFoundError:
        path = fetch_source(remote, cache_dir=cache_dir, progress=progress, force=force)
    if out is None:
        return path
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.copyfile(path, tmp)
    os.replace(tmp, out)
    return out


for _prior in PRIOR_FILES.values():
    register(
        DatasetEntry(
            name=_prior.name,
            kind="prior",
            description=f"Prior knowledge: {_prior.description}",
            citation=_prior.derived_from,
            sources=prior_sources(_prior),
            build=None,
            available_offline=True,
            license=_prior.license,
            source_mode="first_available",
        )
    )
