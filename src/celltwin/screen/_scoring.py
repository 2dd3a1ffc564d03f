"""Scores of a batch of effects under an objective, their intervals, p-values and top genes.

**Intervals.** A model that gives each predicted gene effect an interval ``[lower, upper]`` at
nominal coverage ``level`` (``transition``: 0.9 by default) does not give the interval of a
*score*: scoring ``lower`` and ``upper`` is wrong for any objective that is not monotone in
every gene (a connectivity score, a cosine). The score's interval is propagated by sampling:
:data:`SCORE_SAMPLES` effect matrices are drawn and scored; the interval is the spread of the
sampled scores (their ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles, as distances from
their median) placed around the score of the mean effect, which is what ranks. Without that
centring a nonlinear score drifts under sampling (``specific``'s maximum of ``|effect| / sd``
grows with every noisy draw) and the interval could miss the score it belongs to. Each gene's
total sd is ``(upper - lower) / (2 z)`` (``z`` the normal quantile of ``level``).

- When the model gives its ensemble members' effects (``transition``'s
  ``predict_effects(..., members=True)``: layers ``member0`` ... and ``sd``), draw ``k`` is
  member ``k mod n_members`` plus independent normal noise of sd
  ``sqrt(max(total² - ensemble sd², 0))`` per gene: the members carry how genes move
  together, the noise the rest of the calibrated interval (the classical estimate's error).
- Otherwise every gene is drawn independently from a normal with the predicted mean and the
  total sd; the models give no covariance, so the interval is a rough guide.

Rows without an interval (measured profiles, measured training conditions) get NaN bounds.
The total sd is passed to objectives that take an ``uncertainty`` (``specific``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
from scipy.stats import norm

#: Sampled effect matrices per batch for a score's interval.
SCORE_SAMPLES: Final = 20
#: Genes listed in ``top_genes``.
TOP_GENES: Final = 10
#: Interval level assumed when a model gives bounds without saying their coverage.
DEFAULT_LEVEL: Final = 0.95


def effect_sd(lower: np.ndarray, upper: np.ndarray, level: float) -> np.ndarray:
    """Per-gene sd of a normal whose central ``level`` interval is ``[lower, upper]``."""
    z = float(norm.ppf(0.5 + level / 2))
    return (upper - lower) / (2.0 * z)


def score_rows(
    objective: Any,
    effects: np.ndarray,
    sd: np.ndarray,
    genes: Sequence[str],
    *,
    level: float,
    rng: np.random.Generator,
    members: np.ndarray | None = None,
    ensemble_sd: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(score, lower, upper, pvalue)`` per row; ``pvalue`` NaN when the objective has none.

    ``members`` (members x rows x genes) and ``ensemble_sd`` (rows x genes): the model's
    ensemble, when it gives one (see the module notes)."""
    n = effects.shape[0]
    nan = np.full(n, np.nan)
    if n == 0:
        return nan, nan.copy(), nan.copy(), nan.copy()
    uncertainty = sd if np.isfinite(sd).any() else None
    score = _call(objective.score, effects, genes, uncertainty=uncertainty)
    pvalues = _call(objective.pvalues, effects, genes, score, uncertainty=uncertainty)
    pvalue = nan.copy() if pvalues is None else np.asarray(pvalues, dtype=np.float64)
    lower, upper = nan.copy(), nan.copy()
    with_interval = np.flatnonzero(np.isfinite(sd).all(axis=1) & (sd > 0).any(axis=1))
    if len(with_interval):
        rows = with_interval
        spread = sd[rows]
        u = None if uncertainty is None else spread
        if members is not None and ensemble_sd is not None and len(members) > 1:
            centres = [members[k % len(members)][rows] for k in range(SCORE_SAMPLES)]
            noise = np.sqrt(np.maximum(spread**2 - np.nan_to_num(ensemble_sd[rows]) ** 2, 0.0))
        else:
            centres, noise = [effects[rows]] * SCORE_SAMPLES, spread
        draws = np.vstack(
            [
                _call(objective.score, c + noise * rng.standard_normal(c.shape), genes,
                      uncertainty=u)
                for c in centres
            ]
        )  # fmt: skip
        q_lo, mid, q_hi = np.quantile(draws, [(1.0 - level) / 2, 0.5, (1.0 + level) / 2], axis=0)
        lower[rows] = score[rows] - (mid - q_lo)
        upper[rows] = score[rows] + (q_hi - mid)
    return score, lower, upper, pvalue


def _call(method: Callable[..., Any], *args: Any, uncertainty: np.ndarray | None) -> Any:
    """``method(*args, uncertainty=...)`` when it takes ``uncertainty``, else without it."""
    if uncertainty is not None and "uncertainty" in inspect.signature(method).parameters:
        return method(*args, uncertainty=uncertainty)
    return method(*args)


def top_genes(effects: np.ndarray, genes: Sequence[str], k: int = TOP_GENES) -> list[str]:
    """The ``k`` genes of largest ``|effect|`` per row, largest first, ``;``-joined."""
    if effects.shape[0] == 0:
        return []
    k = min(k, effects.shape[1])
    size = np.abs(np.nan_to_num(effects))
    part = np.argpartition(-size, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(part, np.argsort(-np.take_along_axis(size, part, 1), 1), 1)
    names = np.asarray(genes, dtype=object)
    return [";".join(names[row]) for row in order]


def best_first(scores: np.ndarray, direction: str) -> np.ndarray:
    """Row order from the best score to the worst (stable: ties keep their order; NaN last)."""
    s = np.asarray(scores, dtype=np.float64)
    key = -s if direction == "higher" else s
    return np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")
