"""Scores of a batch of effects under an objective, their intervals, p-values and top genes.

**Intervals.** A model that gives each predicted gene effect an interval ``[lower, upper]`` at
nominal coverage ``level`` (``transition``: 0.9 by default) does not give the interval of a
*score*: scoring ``lower`` and ``upper`` is wrong for any objective that is not monotone in
every gene (a connectivity score, a cosine). The models expose no ensemble members through
:func:`celltwin.models.predict_effects`, so the score's interval is propagated by sampling:
:data:`SCORE_SAMPLES` effect matrices are drawn gene by gene from a normal with the predicted
mean and ``sd = (upper - lower) / (2 z)`` (``z`` the normal quantile of ``level``), each is
scored, and the score's interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles
of the sampled scores. The draws are independent across genes (the models give no
covariance), so the interval is a rough guide, not a calibrated one. Rows without an interval
(measured profiles, measured training conditions) get NaN bounds. The same ``sd`` is passed to
objectives that take an ``uncertainty`` (``specific``).
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(score, lower, upper, pvalue)`` per row; ``pvalue`` NaN when the objective has none."""
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
        mean, spread = effects[with_interval], sd[with_interval]
        u = None if uncertainty is None else spread
        draws = np.vstack(
            [
                _call(objective.score, mean + spread * rng.standard_normal(mean.shape), genes,
                      uncertainty=u)
                for _ in range(SCORE_SAMPLES)
            ]
        )  # fmt: skip
        q = [(1.0 - level) / 2, (1.0 + level) / 2]
        lower[with_interval], upper[with_interval] = np.quantile(draws, q, axis=0)
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
