"""Normalisation: counts -> log1p of counts scaled to a fixed total per cell.

Below every package: :mod:`celltwin.io` (reading normalises raw counts) and :mod:`celltwin.pp`
(which publishes it as :func:`celltwin.pp.log_normalize`) both use it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from ._keys import COUNTS_LAYER, TARGET_SUM, UNS_KEY


def log_normalize(
    adata: AnnData, *, target_sum: float = TARGET_SUM, layer: str = COUNTS_LAYER
) -> None:
    """Set ``adata.X`` to ``log1p(counts / total * target_sum)`` in place.

    Counts are read from ``adata.layers[layer]``; when that layer is missing, the current ``X``
    is taken as the counts and stored there first, so the raw data is never lost.
    What was done is recorded in ``adata.uns['celltwin']['normalization']``.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``layers[layer]`` (or in ``X``).
    target_sum
        Total each cell is scaled to before ``log1p`` (default 1e4, "CP10k").
    layer
        Layer holding the raw counts.
    """
    if layer not in adata.layers:
        adata.layers[layer] = adata.X.copy()
    counts = adata.layers[layer]
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    # Cells with no counts stay at zero rather than dividing by zero.
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    if sp.issparse(counts):
        x = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        x = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ x)
        np.log1p(x.data, out=x.data)
    else:
        x = np.log1p(np.asarray(counts, dtype=np.float32) * scale[:, None].astype(np.float32))
    adata.X = x
    adata.uns.setdefault(UNS_KEY, {})["normalization"] = {
        "method": "log1p_total",
        "target_sum": float(target_sum),
        "counts_layer": layer,
    }
