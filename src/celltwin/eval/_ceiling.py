"""Noise ceiling: how well real data predicts itself, for any registered metric.

Each true perturbation's cells (and the control's) are split at random into two disjoint halves of
``floor(n / 2)`` cells; one half plays the prediction, the other the truth, and the metrics are
computed exactly as for a model. Repeating with new random splits (seeded) averages out the luck
of one split. Values are at half depth: an error metric is somewhat worse, and a correlation
somewhat lower, than a full-depth replicate would give; :func:`spearman_brown` maps a half-depth
correlation to full depth (cell-eval applies it to its bounded, higher-is-better metrics).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .._keys import CONTROL
from ._inputs import build_inputs
from ._matrix import as_matrix
from ._registry import Metric, _resolve_metrics

__all__ = ["Ceiling", "spearman_brown", "split_half_ceiling", "split_halves"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Ceiling:
    """Split-half values of each metric.

    Attributes
    ----------
    perturbations
        The truth's perturbations (sorted); those with fewer than 2 cells are NaN throughout.
    values
        ``{metric: array}``, shape ``(n_repeats, P)`` for perturbation-level metrics and
        ``(n_repeats,)`` for aggregate ones.
    """

    perturbations: NDArray[np.str_]
    values: dict[str, NDArray[np.float64]]

    def mean(self) -> dict[str, NDArray[np.float64]]:
        """Mean over repeats (NaN-aware): ``(P,)`` per perturbation-level metric, ``()`` else."""
        out = {}
        for name, v in self.values.items():
            finite = np.isfinite(v)
            total = np.where(finite, v, 0.0).sum(axis=0)
            count = finite.sum(axis=0)
            out[name] = np.divide(
                total, count, out=np.full(np.shape(total), np.nan), where=count > 0
            )
        return out


def spearman_brown(r: ArrayLike) -> NDArray[np.float64]:
    """Full-depth reliability ``2r / (1 + r)`` from a half-depth correlation; NaN where r <= 0."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, 2.0 * r / (1.0 + r), np.nan)


def split_halves(
    labels: ArrayLike, *, n_repeats: int = 3, seed: int = 0
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Random disjoint halves of every label's cells, ``n_repeats`` times.

    Returns a list of ``(half_a, half_b)`` cell-index arrays. Each label contributes
    ``floor(n / 2)`` cells to each half (an odd cell out is left out); labels with fewer than 2
    cells are in neither half.
    """
    if n_repeats < 1:
        raise ValueError(f"'n_repeats' must be >= 1 (got {n_repeats})")
    lab = np.asarray(labels).astype(str)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(lab == u) for u in np.unique(lab)]
    splits = []
    for _ in range(n_repeats):
        a, b = [], []
        for idx in members:
            half = idx.size // 2
            if half == 0:
                continue
            perm = rng.permutation(idx)
            a.append(perm[:half])
            b.append(perm[half : 2 * half])
        empty = np.empty(0, dtype=np.int64)
        splits.append(
            (
                np.sort(np.concatenate(a)) if a else empty,
                np.sort(np.concatenate(b)) if b else empty,
            )
        )
    return splits


def split_half_ceiling(
    X: ArrayLike | sp.spmatrix,
    labels: ArrayLike,
    *,
    genes: ArrayLike,
    metrics: Iterable[str | Metric] | None = None,
    n_repeats: int = 3,
    seed: int = 0,
    control: str = CONTROL,
    reference: ArrayLike | None = None,
    n_pcs: int = 50,
    max_cells: int | None = 500,
) -> Ceiling:
    """Real-vs-real ceiling of ``metrics`` by repeated split halves.

    In each repeat, half B of the true cells is scored as the prediction of half A, through
    :func:`~celltwin.eval.build_inputs` and :meth:`Metric.compute`, so any registered
    metric gets its ceiling the same way it gets its model score. Inputs are built only for the
    kinds the metrics need; ``reference`` is passed through for Systema metrics. ``metrics``
    default: every registered metric computable from cells (as
    :func:`~celltwin.eval.compute_metrics`).
    """
    chosen = _resolve_metrics(metrics)
    X = as_matrix(X)
    kinds = set().union(*(metric.kinds for metric in chosen))
    lab = np.asarray(labels).astype(str)
    perts = np.unique(lab[lab != control])
    values = {
        metric.name: np.full(
            (n_repeats, perts.size) if metric.level == "perturbation" else (n_repeats,), np.nan
        )
        for metric in chosen
    }
    for r, (half_a, half_b) in enumerate(split_halves(lab, n_repeats=n_repeats, seed=seed)):
        if control not in set(lab[half_a].tolist()):
            raise ValueError(f"the control {control!r} needs at least 2 cells to be split")
        inputs = build_inputs(
            X[half_b],
            X[half_a],
            pred_labels=lab[half_b],
            true_labels=lab[half_a],
            genes=genes,
            kinds=kinds,
            control=control,
            reference=reference,
            n_pcs=n_pcs,
            max_cells=max_cells,
            seed=seed + r,
        )
        cols = np.searchsorted(perts, inputs.perturbations)
        for metric in chosen:
            value = metric.compute(inputs)
            if metric.level == "perturbation":
                values[metric.name][r, cols] = value
            else:
                values[metric.name][r] = value
    return Ceiling(perturbations=perts, values=values)
