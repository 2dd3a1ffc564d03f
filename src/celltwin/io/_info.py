"""``celltwin info``: what a file holds, in celltwin's terms, for any file celltwin reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._keys import CONTEXT, PERTURBATION
from ._describe import describe
from ._rank_signatures import RankSignatures
from ._read import open_h5ad
from ._signatures import read_signatures

_SIGNATURE_SUFFIXES = (".json", ".json.gz")


def info(path: str | os.PathLike[str], *, top: int = 10) -> str:
    """Return a readable report of what ``path`` holds.

    ``.h5ad`` files (any convention :func:`celltwin.io.read` knows; opened backed, so large files
    are cheap) are summarised by :func:`describe`; signature files (``.json`` / ``.json.gz`` in
    the layout of ``../shared/README.md``) by their contexts, perturbations and rankings.

    Parameters
    ----------
    path
        An ``.h5ad`` file, a signature file, or a folder of signature files.
    top
        How many of the largest perturbations to list.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_dir() or p.name.endswith(_SIGNATURE_SUFFIXES):
        return _signature_text(read_signatures(p), p)
    if p.suffix != ".h5ad":
        raise ValueError(
            f"{p.name}: celltwin reads .h5ad files and signature files ({', '.join(_SIGNATURE_SUFFIXES)}); "
            "convert other formats to .h5ad first (e.g. with scanpy.read_10x_mtx)"
        )
    adata = open_h5ad(p, backed=True)
    try:
        return f"{p}\n" + describe(adata, top=top).to_text()
    finally:
        adata.file.close()


def _signature_text(sigs: RankSignatures, path: Path) -> str:
    table = sigs.table
    lines = [f"{path}", "celltwin signature summary"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<18}{text}")

    row("kind", "rank signatures")
    row("contexts", str(len(sigs.contexts)))
    for context, sub in table.groupby(CONTEXT, sort=False, observed=True):
        n_full = np.array([len(g) for g in sub["up_full"]])
        n_up = np.array([len(g) for g in sub["up"]])
        ranking = ", ".join(sorted(set(sub["ranking"])))
        lines.append(
            f"    {context}: "
            f"{sub[PERTURBATION].nunique():,} perturbations; ranking {ranking}; "
            f"ranked genes median {np.median(n_full):,.0f}; significant up median {np.median(n_up):,.0f}",
        )
    per_pert = table.groupby(PERTURBATION, observed=True)[CONTEXT].nunique()
    row(
        "perturbations",
        f"{len(per_pert):,} ({int((per_pert == len(sigs.contexts)).sum()):,} in every context)",
    )
    row("genes", f"{len(sigs.genes()):,}")
    return "\n".join(lines)
