"""scGen's metrics: R² of predicted and true mean expression, on all genes or the top DE genes.

Conventions as in :mod:`celltwin.eval._metrics` (prediction then truth, one value per row).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._de import DEResult

__all__ = ["r2_mean", "r2_mean_top_de"]


def _rowwise_r2(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared Pearson r of each row pair; NaN where either row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b)
    out = np.full(a.shape[0], np.nan)
    ok = den > 0
    out[ok] = num[ok] ** 2 / den[ok]
    return out


def r2_mean(pred_means: ArrayLike, true_means: ArrayLike) -> NDArray[np.float64]:
    """scGen's R²: squared Pearson r of predicted and true mean expression over all genes.

    scGen (Lotfollahi et al. 2019) reports ``scipy.stats.linregress(x, y).rvalue ** 2`` of the
    mean profiles, which is this. Higher is better, 1 is perfect.
    """
    p = np.asarray(pred_means, dtype=np.float64)
    t = np.asarray(true_means, dtype=np.float64)
    return _rowwise_r2(p, t)


def r2_mean_top_de(
    pred_means: ArrayLike, true_means: ArrayLike, *, true_de: DEResult, k: int = 100
) -> NDArray[np.float64]:
    """scGen's R² of mean expression on each perturbation's top-``k`` DE genes.

    scGen takes the top ``k`` genes of ``scanpy.tl.rank_genes_groups(method="wilcoxon")`` for
    the stimulated group: the most *up*-regulated by Wilcoxon score. Here: the ``k`` genes of
    largest signed score ``sign(lfc) * -log10(p)`` of :func:`celltwin.eval.rank_sum_test` (the same
    order as the Wilcoxon z for one group against the control); ``true_de`` rows in the order
    of the profiles' rows.
    """
    p = np.asarray(pred_means, dtype=np.float64)
    t = np.asarray(true_means, dtype=np.float64)
    with np.errstate(divide="ignore"):
        score = np.sign(true_de.log2_fold_change) * -np.log10(np.maximum(true_de.pvalue, 1e-300))
    score = np.nan_to_num(score, nan=-np.inf)
    top = np.argsort(-score, axis=1, kind="stable")[:, : min(k, p.shape[1])]
    return _rowwise_r2(np.take_along_axis(p, top, axis=1), np.take_along_axis(t, top, axis=1))
