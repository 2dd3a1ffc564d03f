"""Distributional metrics: predicted and true cells compared in a shared PCA space.

Conventions as in :mod:`celltwin.eval._metrics`; each perturbation's cells are one ``(n_i, d)``
array of PCA coordinates (:func:`fit_pca` on true data only, so every model is scored in the
same space).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import cdist

from ._matrix import is_sparse

__all__ = ["MMD_SCALES", "PCABasis", "energy_distance", "fit_pca", "mmd"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PCABasis:
    """A PCA projection: ``(X - mean) @ components.T``."""

    mean: NDArray[np.float64]
    components: NDArray[np.float64]

    def transform(self, X: ArrayLike | sp.spmatrix) -> NDArray[np.float64]:
        """Project cells (rows of ``X``) onto the components."""
        x = X.toarray() if is_sparse(X) else np.asarray(X)
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T


def fit_pca(X: ArrayLike | sp.spmatrix, *, n_components: int = 50, seed: int = 0) -> PCABasis:
    """Fit a PCA basis, e.g. on the true perturbed cells plus the control cells.

    Fitting on true data only keeps the space independent of the model being scored, so two models
    are compared in the same space. ``n_components`` is capped by the data's rank limit.
    """
    from sklearn.decomposition import PCA

    x = X.toarray() if is_sparse(X) else np.asarray(X)
    x = np.asarray(x, dtype=np.float64)
    k = int(min(n_components, x.shape[0] - 1, x.shape[1]))
    if k < 1:
        raise ValueError(f"PCA needs at least 2 cells and 1 gene, got shape {x.shape}")
    pca = PCA(n_components=k, random_state=seed).fit(x)
    return PCABasis(
        mean=pca.mean_.astype(np.float64), components=pca.components_.astype(np.float64)
    )


def _cells(pred_cells: Sequence[ArrayLike], true_cells: Sequence[ArrayLike]) -> list[tuple]:
    if len(pred_cells) != len(true_cells):
        raise ValueError(
            f"pred_cells and true_cells must list the same perturbations: "
            f"{len(pred_cells)} vs {len(true_cells)}"
        )
    return [
        (np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        for a, b in zip(pred_cells, true_cells, strict=True)
    ]


def energy_distance(
    pred_cells: Sequence[ArrayLike], true_cells: Sequence[ArrayLike]
) -> NDArray[np.float64]:
    """Energy distance between predicted and true cells of each perturbation.

    ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` with Euclidean distances, each expectation the mean over
    all pairs including a cell with itself (V-statistic, as cell-eval's and pertpy's
    ``edistance``), so it is >= 0 and exactly 0 for identical sets. Lower is better.
    """
    out = []
    for x, y in _cells(pred_cells, true_cells):
        if len(x) == 0 or len(y) == 0:
            out.append(np.nan)
            continue
        out.append(2.0 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())
    return np.asarray(out, dtype=np.float64)


#: Bandwidths of the RBF kernels in :func:`mmd`, as multiples of the median heuristic.
MMD_SCALES: tuple[float, ...] = (0.5, 1.0, 2.0)


def mmd(
    pred_cells: Sequence[ArrayLike],
    true_cells: Sequence[ArrayLike],
    *,
    scales: Sequence[float] = MMD_SCALES,
) -> NDArray[np.float64]:
    """Maximum mean discrepancy (squared, biased estimator) between predicted and true cells.

    Kernel: the average of RBF kernels ``exp(-|a - b|^2 / (2 s^2))`` over ``s = c * sigma`` for
    ``c`` in ``scales``, where ``sigma`` is the median pairwise distance among the *true* cells of
    that perturbation (the median heuristic, taken on the truth so every model is scored with the
    same kernel; 1 if that median is 0). ``MMD^2 = mean K(X, X) + mean K(Y, Y) - 2 mean K(X, Y)``,
    >= 0 and 0 for identical sets. Lower is better.
    """
    out = []
    for x, y in _cells(pred_cells, true_cells):
        if len(x) == 0 or len(y) == 0:
            out.append(np.nan)
            continue
        dyy = cdist(y, y, metric="sqeuclidean")
        off = dyy[~np.eye(len(y), dtype=bool)]
        sigma = float(np.sqrt(np.median(off))) if off.size else 0.0
        sigma = sigma if sigma > 0 else 1.0
        dxx = cdist(x, x, metric="sqeuclidean")
        dxy = cdist(x, y, metric="sqeuclidean")
        total = 0.0
        for c in scales:
            gamma = 1.0 / (2.0 * (c * sigma) ** 2)
            total += (
                np.exp(-gamma * dxx).mean()
                + np.exp(-gamma * dyy).mean()
                - 2.0 * np.exp(-gamma * dxy).mean()
            )
        out.append(max(total / len(scales), 0.0))
    return np.asarray(out, dtype=np.float64)
