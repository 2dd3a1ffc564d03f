"""From a classical estimate (plus the network's correction) to a population of cells.

Shifting control cells by an effect is not yet a plausible population: the change of a gene
that moves as a fold change depends on each cell's own expression (:func:`fold_detail`), values
must stay non-negative without losing the mean (:func:`floor_at_zero`), and a gene gained by
cells lacking it is gained by few of them at its usual level (:func:`sparse_gain`).
"""

from __future__ import annotations

import numpy as np

from ._estimate import Estimate, fold_change_effect


def evenly(cells: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``cells``, evenly spaced (deterministic, no seed needed)."""
    if len(cells) <= n:
        return cells
    return cells[np.linspace(0, len(cells) - 1, n).astype(np.int64)]


def fold_detail(cells: np.ndarray, est: Estimate) -> np.ndarray:
    """Per-cell departure from the mean change under the estimate's fold-change share.

    A gene that changes as a fold change changes more in cells expressing it more (and not at
    all where it is absent); this adds that spread around the estimate, keeping its mean.
    """
    if est.fold is None:
        return np.zeros(cells.shape[1])  # broadcasts: no per-cell matrix to add
    ratio, share = est.fold
    effect = fold_change_effect(cells, ratio)
    return share * (effect - effect.mean(axis=0))


def expressed_level(x: np.ndarray) -> np.ndarray:
    """Per gene, the median log1p value of the cells that express it (0 if none does)."""
    out = np.zeros(x.shape[1])
    for g in range(x.shape[1]):
        values = x[:, g]
        values = values[values > 0]
        if len(values):
            out[g] = float(np.median(values))
    return out


def sparse_gain(
    cells: np.ndarray, out: np.ndarray, level: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """Concentrate what cells without a gene gained into few cells at the gene's usual level.

    Adding a small mean gain to every cell that does not express a gene gives all of them a
    sliver of it: a population in which a gene absent from every control cell is suddenly
    detected in every cell, as in no measured one (expression is sparse: a cell gains a gene
    as counts, not as a fraction of one). Per gene, when the cells at zero in ``cells`` gained
    on average less than ``level`` (the gene's median non-zero log1p value), their total gain
    goes to as many of them, drawn at random, as it fills at ``level`` (the remainder to one
    more), and the others stay at zero. Each gene's mean is kept exactly; cells that expressed
    the gene are left as they are.
    """
    zero = cells == 0
    gained = np.where(zero, out, 0.0).sum(axis=0)
    n_zero = zero.sum(axis=0)
    todo = np.flatnonzero((gained > 0) & (level > 0) & (gained < level * n_zero))
    if len(todo) == 0:
        return out
    out = out.copy()
    for g in todo:
        rows = np.flatnonzero(zero[:, g])
        full = int(gained[g] // level[g])
        rest = float(gained[g] - full * level[g])
        picked = rng.choice(rows, size=min(full + 1, len(rows)), replace=False)
        out[rows, g] = 0.0
        out[picked[:full], g] = level[g]
        if full < len(picked):
            out[picked[full], g] = rest
    return out


def floor_at_zero(y: np.ndarray, *, n_iter: int = 50) -> np.ndarray:
    """``max(y + s, 0)`` with a per-gene shift ``s`` that keeps each column's mean.

    Shifting control cells by an effect and clipping at zero raises the mean of every gene
    whose cells the shift pushes below zero, so the generated population would no longer carry
    the effect it was built from (a knock-down of a lowly expressed gene came out weaker than
    estimated, and how much weaker depended non-linearly on the estimate). The shift ``s <= 0``
    is found by bisection (the clipped mean grows monotonically with ``s``); a column whose
    mean is not positive becomes all zeros, the closest non-negative population.
    """
    target = y.mean(axis=0)
    clipped = np.maximum(y, 0.0)
    need = clipped.mean(axis=0) > target + 1e-12
    if not need.any():
        return clipped
    sub = y[:, need]
    lo = -np.maximum(sub.max(axis=0), 0.0)  # clipped mean 0 <= target (when target >= 0)
    hi = np.zeros(sub.shape[1])  # clipped mean >= target
    goal = np.maximum(target[need], 0.0)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        above = np.maximum(sub + mid, 0.0).mean(axis=0) > goal
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    clipped[:, need] = np.maximum(sub + 0.5 * (lo + hi), 0.0)
    return clipped


def latent_summary(z: np.ndarray) -> np.ndarray:
    """Latent mean and standard deviation of a cell population (2k,)."""
    if len(z) == 0:
        return np.zeros(2 * z.shape[1])
    return np.concatenate([z.mean(axis=0), z.std(axis=0)])
