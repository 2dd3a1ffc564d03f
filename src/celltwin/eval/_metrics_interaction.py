"""Interaction recovery of combinations: partial correlation given the additive expectation."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["interaction_pearson"]


def _partial_pearson(
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> float:
    """Pearson r of ``x`` and ``y`` after removing from both their least-squares fit on ``[1, z]``.

    0 when nothing of ``x`` is left (a prediction with no interaction beyond the additive one
    recovers none). Not clipped to [-1, 1] (unlike :func:`_rowwise_pearson`).
    """
    design = np.column_stack([np.ones_like(z), z])

    def residual(v: NDArray[np.float64]) -> NDArray[np.float64]:
        fitted: NDArray[np.float64] = design @ np.linalg.lstsq(design, v, rcond=None)[0]
        return v - fitted

    rx, ry = residual(x), residual(y)
    # Below this, what is left is float32 rounding of the predicted cells, not an interaction.
    scale = max(float(np.linalg.norm(x)), float(np.linalg.norm(z)), 1e-12)
    if float(np.linalg.norm(rx)) <= 1e-5 * scale or not np.any(ry):
        return 0.0
    a, b = rx[None, :], ry[None, :]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.where(den > 0, np.einsum("ij,ij->i", a, b) / den, np.nan)[0])


def interaction_pearson(
    pred_interaction: ArrayLike, true_interaction: ArrayLike, *, additive: ArrayLike
) -> NDArray[np.float64]:
    """Recovery of each combination's interaction: partial Pearson r given the additive sum.

    For combination ``p`` (a row): ``pred_interaction`` is the predicted effect minus
    ``additive``, the sum of its parts' effects as the model has them; ``true_interaction`` is
    the true effect minus the true singles' effects (e.g.
    :attr:`celltwin.simulate.Simulation.interactions`). Both are freed of their least-squares
    fit on ``[1, additive]`` over the genes before correlating, so a prediction that merely
    shrinks (or scales) the sum of its parts scores 0, not the correlation that the simulator's
    mostly sub-additive interactions would give it. 0 when no interaction beyond ``additive``
    is predicted; NaN when a residual is constant. Higher is better, 1 is perfect.

    Parameters
    ----------
    pred_interaction, true_interaction, additive
        ``(P, G)`` (or ``(G,)`` for one combination) over the same genes.

    Returns
    -------
    ``(P,)`` float64.
    """
    x = np.atleast_2d(np.asarray(pred_interaction, dtype=np.float64))
    y = np.atleast_2d(np.asarray(true_interaction, dtype=np.float64))
    z = np.atleast_2d(np.asarray(additive, dtype=np.float64))
    if not x.shape == y.shape == z.shape:
        raise ValueError(
            "pred_interaction, true_interaction and additive must have the same shape "
            f"(combinations x genes); got {x.shape}, {y.shape} and {z.shape}"
        )
    return np.array([_partial_pearson(x[i], y[i], z[i]) for i in range(x.shape[0])])


def interval_coverage(
    true_effect: ArrayLike, *, lower: ArrayLike, upper: ArrayLike
) -> NDArray[np.float64]:
    """Share of genes whose true effect lies inside the predicted interval, per condition.

    The calibration check of a model's effect intervals: with a nominal 90% interval, a
    well-calibrated model covers about 0.9 of the genes of a held-out condition.

    Parameters
    ----------
    true_effect, lower, upper
        ``(P, G)`` (or ``(G,)`` for one condition) over the same genes: the true effect (held-out
        mean minus the control mean) and the interval's bounds, ends included.

    Returns
    -------
    ``(P,)`` float64 in [0, 1].
    """
    t = np.atleast_2d(np.asarray(true_effect, dtype=np.float64))
    lo = np.atleast_2d(np.asarray(lower, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(upper, dtype=np.float64))
    if not t.shape == lo.shape == hi.shape:
        raise ValueError(
            "true_effect, lower and upper must have the same shape (conditions x genes); got "
            f"{t.shape}, {lo.shape} and {hi.shape}"
        )
    return np.asarray(((t >= lo) & (t <= hi)).mean(axis=1), dtype=np.float64)
