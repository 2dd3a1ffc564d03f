"""Marker tables, and cell types called from them on clusters of the unperturbed cells."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._embedding import dense

#: Name of the marker table shipped with celltwin (``celltwin/pp/markers/``).
PBMC_MARKERS = "pbmc_markers.tsv"

_MARKER_COLUMNS = ("cell_type", "gene", "weight")


def read_markers(path: str | Path | None = None) -> pd.DataFrame:
    """Read a marker table: one row per (cell type, gene) with a signed weight.

    Parameters
    ----------
    path
        Tab-separated file with a header ``cell_type  gene  [weight]``; lines starting with ``#``
        are comments. ``weight`` defaults to 1; negative weights mark genes of a neighbouring type.
        ``None`` reads celltwin's PBMC markers (:data:`PBMC_MARKERS`).

    Returns
    -------
    pandas.DataFrame
        Columns ``cell_type`` (str), ``gene`` (str), ``weight`` (float, never 0).
    """
    if path is None:
        with resources.files("celltwin.pp").joinpath("markers", PBMC_MARKERS).open() as fh:
            table = pd.read_csv(fh, sep="\t", comment="#")
    else:
        table = pd.read_csv(path, sep="\t", comment="#")
    return validate_markers(table)


def validate_markers(table: pd.DataFrame) -> pd.DataFrame:
    """The marker table with its three columns typed, or a ValueError saying what is wrong."""
    missing = [c for c in _MARKER_COLUMNS[:2] if c not in table.columns]
    if missing:
        raise ValueError(
            f"marker table lacks column(s) {missing} (has {list(table.columns)}); "
            "give columns 'cell_type', 'gene' and optionally 'weight'"
        )
    table = table.copy()
    if "weight" not in table.columns:
        table["weight"] = 1.0
    table = table[list(_MARKER_COLUMNS)]
    table["cell_type"] = table["cell_type"].astype(str)
    table["gene"] = table["gene"].astype(str)
    table["weight"] = pd.to_numeric(table["weight"], errors="raise").astype(float)
    if (table["weight"] == 0).any() or table["weight"].isna().any():
        bad = table.loc[(table["weight"] == 0) | table["weight"].isna()].iloc[0]
        raise ValueError(
            f"marker 'weight' must be non-zero (got {bad['weight']} for "
            f"{bad['cell_type']}/{bad['gene']}); drop the row or give it a sign"
        )
    if not (table["weight"] > 0).groupby(table["cell_type"]).any().all():
        raise ValueError("every cell type in the marker table needs at least one positive marker")
    return table.reset_index(drop=True)


def marker_scores(
    adata: AnnData,
    table: pd.DataFrame,
    anchors: np.ndarray,
    embedding: np.ndarray,
    n_clusters: int | None,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Type scores of the anchors: marker means over k-means clusters of the anchors."""
    from sklearn.cluster import KMeans

    present = table[table["gene"].isin(adata.var_names)]
    types = [
        t
        for t in pd.unique(table["cell_type"])
        if (present.loc[present.cell_type == t, "weight"] > 0).any()
    ]
    if len(types) < 2:
        raise ValueError(
            f"only {len(types)} cell type(s) have a positive marker among adata.var_names "
            f"(markers: {sorted(set(table['gene']))[:10]}...); var_names must be gene symbols"
        )
    present = present[present["cell_type"].isin(types)]
    genes = list(pd.unique(present["gene"]))
    col = {g: i for i, g in enumerate(genes)}
    expr = dense(adata[np.flatnonzero(anchors)][:, genes].X)

    n_anchor = expr.shape[0]
    k = n_clusters or max(8, round(n_anchor / 150))
    k = int(min(k, n_anchor))
    clusters = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit_predict(
        embedding[anchors]
    )
    means = pd.DataFrame(expr).groupby(clusters).mean().to_numpy()  # clusters x genes
    top = means.max(axis=0)
    # Each marker counts on the same 0..1 scale: its cluster mean over its highest cluster mean.
    scaled = np.divide(means, top, out=np.zeros_like(means), where=top > 0)

    cluster_scores = np.zeros((k, len(types)))
    used: dict[str, list[str]] = {}
    for j, t in enumerate(types):
        rows = present[present["cell_type"] == t]
        w = rows["weight"].to_numpy()
        idx = np.array([col[g] for g in rows["gene"]])
        pos, neg = w > 0, w < 0
        cluster_scores[:, j] = scaled[:, idx[pos]] @ w[pos] / w[pos].sum()
        if neg.any():
            cluster_scores[:, j] -= scaled[:, idx[neg]] @ (-w[neg]) / (-w[neg]).sum()
        used[str(t)] = [str(g) for g in rows["gene"]]
    record = {
        "method": "markers",
        "n_clusters": k,
        "marker_genes": used,
        "missing_genes": sorted(set(table["gene"]) - set(genes)),
    }
    return cluster_scores[clusters], np.asarray(types, dtype=object), record


def add_marker_only_types(
    scores: np.ndarray, types: np.ndarray, marker_call: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Give anchors that the markers call a type the reference lacks that type, outright."""
    known = set(types.tolist())
    extra = [str(t) for t in pd.unique(marker_call) if t not in known]
    if not extra:
        return scores, types, []
    out = np.hstack([scores, np.zeros((scores.shape[0], len(extra)))])
    for j, t in enumerate(extra, start=len(types)):
        rows = marker_call == t
        out[rows] = 0.0
        out[rows, j] = 1.0
    return out, np.concatenate([types, np.asarray(extra, dtype=object)]), extra
