"""Single-number scores against a baseline: the VCC score and the baseline profile it uses."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from ._matrix import is_sparse

__all__ = ["baseline_scaled", "mean_of_centroids", "vcc_score"]


def mean_of_centroids(
    X: ArrayLike | sp.spmatrix, labels: ArrayLike, *, exclude: Collection[str] = ()
) -> NDArray[np.float64]:
    """Equal-weight mean of the group centroids (mean profile of each label's cells).

    - cell-eval's VCC baseline (``build_base_mean_adata``) averages the centroids of *all* groups
      of the training data, the control's included: ``exclude=()``.
    - Systema's reference (``average_of_perturbation_centroids``) leaves the control out:
      ``exclude=(CONTROL,)``.
    """
    lab = np.asarray(labels).astype(str)
    keep = ~np.isin(lab, list(exclude))
    uniq, inv = np.unique(lab[keep], return_inverse=True)
    if uniq.size == 0:
        raise ValueError(f"no cells left after excluding {sorted(exclude)}")
    x = X[np.flatnonzero(keep)] if is_sparse(X) else np.asarray(X)[keep]
    indicator = sp.csr_matrix(
        (np.ones(inv.size), (inv, np.arange(inv.size))), shape=(uniq.size, inv.size)
    )
    sums = indicator @ (x.astype(np.float64) if is_sparse(x) else np.asarray(x, np.float64))
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    centroids = sums / np.bincount(inv)[:, None]
    return centroids.mean(axis=0)


def baseline_scaled(value: float, baseline: float, *, best: float) -> float:
    """Improvement over a baseline on a 0 (no better than the baseline) to 1 (perfect) scale.

    ``best = 0`` (errors): ``1 - value / baseline``; ``best = 1`` (scores): ``(value - baseline) /
    (1 - baseline)``. NaN becomes 0 and negatives are clipped to 0, as cell-eval's
    ``score_agg_metrics`` does; there is no upper clip.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if best == 0:
            scaled = 1.0 - np.float64(value) / np.float64(baseline)
        elif best == 1:
            scaled = (np.float64(value) - baseline) / (1.0 - np.float64(baseline))
        else:
            raise ValueError(f"'best' must be 0 or 1 for baseline scaling (got {best})")
    if not np.isfinite(scaled):
        return 0.0
    return float(max(scaled, 0.0))


def vcc_score(
    *,
    mae: float,
    des: float,
    pds: float,
    baseline_mae: float,
    baseline_des: float,
    baseline_pds: float,
) -> float:
    """The Virtual Cell Challenge score: mean of the three baseline-scaled metrics.

    Arguments are means over perturbations of :func:`mae`, :func:`des` and :func:`pds` for the
    model and for the baseline (cell-eval: every perturbation predicted as the mean of the training
    centroids, see :func:`mean_of_centroids`). MAE is scaled with ``1 - u / b``, DES and PDS with
    ``(u - b) / (1 - b)``; each is clipped at 0 (see :func:`baseline_scaled`).
    """
    parts = (
        baseline_scaled(mae, baseline_mae, best=0),
        baseline_scaled(des, baseline_des, best=1),
        baseline_scaled(pds, baseline_pds, best=1),
    )
    return float(np.mean(parts))
