"""Measured candidates: profiles someone measured, screened beside the predicted ones (as the
Connectivity Map screens its library): an AnnData of effects, signature files, gene-score
tables and the Connectivity Map rank profiles of the shared folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTROL, DOSE, PERTURBATION
from .._settings import shared_dir
from ..io import read_signatures
from ._candidates import Candidates

__all__ = ["cmap", "measured"]

#: The Connectivity Map rank profiles in the shared folder (genes x compounds, rank 1 = most up).
CMAP_FILE: Final = "data/lincs/DrugVsDisease_cmap56_rank_profiles.csv.gz"


def measured(profiles: AnnData | str | os.PathLike[str], *, prefix: str = "") -> Candidates:
    """Measured profiles as candidates, screened beside the predicted ones.

    Parameters
    ----------
    profiles
        An AnnData of effects (rows = profiles; ``obs['perturbation']`` names each row, else
        its obs name) or the output of :func:`celltwin.pp.pseudobulk` (its ``delta`` layer is
        the effect; control rows are left out), an ``.h5ad`` of either, a ranked signature file (``.json.gz``/``.json``,
        :func:`celltwin.io.read_signatures`; ranks become centred scores, +1 for the most up
        gene to -1 for the most down, 0 for genes not ranked) or a ``.csv``/``.tsv`` of gene
        scores (rows = profiles, first column their names; columns = genes).
    prefix
        Put before every label (e.g. ``"measured:"``), to tell a measured STAT1 from a
        predicted one.
    """
    adata = _profiles(profiles)
    if "delta" in adata.layers:  # a pseudobulk table: its effects, without the control rows
        if PERTURBATION in adata.obs:
            adata = adata[adata.obs[PERTURBATION].astype(str).to_numpy() != CONTROL]
        adata = AnnData(X=adata.layers["delta"], obs=adata.obs, var=adata.var)
    matrix = adata.X
    x = np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)
    if x.ndim != 2 or adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError("measured: the profiles are empty (no rows or no genes).")
    if np.isinf(x).any():
        raise ValueError("measured: the profiles hold infinite values. Fix: drop or clip them.")
    names = (
        adata.obs[PERTURBATION].astype(str).to_numpy()
        if PERTURBATION in adata.obs
        else adata.obs_names.astype(str).to_numpy()
    )
    labels = [f"{prefix}{n}" for n in adata.obs_names.astype(str)]
    dose = adata.obs[DOSE].astype(str).to_numpy() if DOSE in adata.obs else ""
    table = pd.DataFrame({"label": labels, PERTURBATION: names, DOSE: dose, "kind": "measured"})
    out = AnnData(
        X=x.astype(np.float32),
        obs=pd.DataFrame({PERTURBATION: names}, index=pd.Index(labels)),
        var=pd.DataFrame(index=adata.var_names.astype(str)),
    )
    if not out.var_names.is_unique:
        raise ValueError("measured: the profiles name some genes twice. Fix: make genes unique.")
    return Candidates(table, out)


def _profiles(source: AnnData | str | os.PathLike[str]) -> AnnData:
    if isinstance(source, AnnData):
        return source
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"measured profiles {str(path)!r} not found (--measured).")
    name = path.name.lower()
    if name.endswith(".h5ad"):
        import anndata

        return anndata.read_h5ad(path)
    if name.endswith((".json", ".json.gz")) or path.is_dir():
        return read_signatures(path).to_scores(transform="linear_rank")
    if name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        sep = "\t" if ".tsv" in name else ","
        frame = pd.read_csv(path, sep=sep, index_col=0)
        frame = frame.apply(pd.to_numeric, errors="coerce")
        return AnnData(
            X=frame.to_numpy(dtype=np.float32),
            obs=pd.DataFrame(index=frame.index.astype(str)),
            var=pd.DataFrame(index=frame.columns.astype(str)),
        )
    raise ValueError(
        f"measured profiles {str(path)!r}: unknown format. Fix: an .h5ad of effects, a "
        ".json.gz signature file or a .csv of gene scores (rows = profiles)."
    )


def cmap(path: str | os.PathLike[str] | None = None, *, prefix: str = "cmap:") -> Candidates:
    """The ranked Connectivity Map profiles (56 compounds, 11,863 genes) as measured candidates.

    Ranks become centred rank scores, as for ranked signatures: in a profile ranking ``n``
    genes, rank ``r`` (1 = most up-regulated, CMap build 02's convention) scores
    ``1 - 2 (r - 1) / (n - 1)``, +1 for the most up to -1 for the most down; tied ranks
    (``5266.5``) keep their mid-rank. Genes a profile does not rank are NaN. The scores are on
    a rank scale, not log1p changes: screen them with rank-based objectives (``reverse`` /
    ``mimic`` with the weighted connectivity score, as the Connectivity Map does), not with
    objectives that weigh magnitudes (``move``, ``specific``).

    Parameters
    ----------
    path
        A genes x compounds CSV of ranks; default the shared
        ``data/lincs/DrugVsDisease_cmap56_rank_profiles.csv.gz``.
    prefix
        Put before every compound's label.
    """
    file = Path(path) if path is not None else shared_dir() / CMAP_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"Connectivity Map profiles {str(file)!r} not found. Fix: set CELLTWIN_SHARED to "
            "the shared folder, or pass path= (a genes x compounds CSV of ranks)."
        )
    ranks = pd.read_csv(file, index_col=0).apply(pd.to_numeric, errors="coerce")
    n = ranks.notna().sum(axis=0).to_numpy(dtype=float)
    scores = 1.0 - 2.0 * (ranks.to_numpy(dtype=float) - 1.0) / np.maximum(n - 1.0, 1.0)
    adata = AnnData(
        X=scores.T.astype(np.float32),
        obs=pd.DataFrame(index=ranks.columns.astype(str)),
        var=pd.DataFrame(index=ranks.index.astype(str)),
    )
    return measured(adata, prefix=prefix)
