"""Threshold-free scoring of a map: the precision-recall curve of its ranked candidate edges
(issue 19, point 5).

:func:`score_map` scores the edges a map calls at its FDR; two maps calling different numbers of
edges then differ in budget as well as in ranking. :func:`precision_recall` ranks every pair a map
tested (by p-value, then by effect size) and gives the whole curve, its area (average
precision) and the precision and recall of the top ``k`` pairs, so maps can be compared at the
same number of calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._causal import CausalMap
from ._score_map import _true_in, _universe

#: Columns of :attr:`PrecisionRecall.curve`.
CURVE_COLUMNS = ("source", "target", "pvalue", "effect", "true", "precision", "recall")


@dataclass(frozen=True)
class PrecisionRecall:
    """A map's ranked candidate edges scored against a known network.

    Attributes
    ----------
    curve
        One row per ranked candidate pair in the universe, best first (:data:`CURVE_COLUMNS`):
        the combined ``pvalue``, ``effect`` (mean ``delta`` over contexts), whether the pair is
        ``true``, and the ``precision`` and ``recall`` of the top rows down to this one.
    average_precision
        Area under the curve: sum over distinct ranks of (recall gain) x precision, with pairs
        tied in both p-value and effect entering together (as
        :func:`sklearn.metrics.average_precision_score`). True pairs the map never tested count
        as missed. NaN when the universe holds no true pair.
    true
        True pairs in the universe.
    pairs
        Size of the universe (sources x genes minus self-pairs).
    """

    curve: pd.DataFrame
    average_precision: float
    true: int
    pairs: int

    def at(self, k: int) -> pd.Series:
        """Precision and recall of the top ``k`` pairs (all ranked pairs when fewer).

        Returns
        -------
        pandas.Series
            ``k``, ``called``, ``true_positives``, ``precision``, ``recall``, ``f1``.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
            raise ValueError(f"k must be a non-negative integer number of calls, not {k!r}")
        top = self.curve["true"].to_numpy()[: int(k)]
        tp, called = int(top.sum()), int(top.size)
        precision = tp / called if called else np.nan
        recall = tp / self.true if self.true else np.nan
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else np.nan
        return pd.Series(
            {
                "k": int(k),
                "called": called,
                "true_positives": tp,
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )


def _ranked(candidates: pd.DataFrame) -> pd.DataFrame:
    """Pairs combined over contexts (Bonferroni p, mean effect), best first."""
    missing = [c for c in ("source", "target", "pvalue") if c not in candidates.columns]
    if missing:
        raise KeyError(
            f"candidates lack {missing}: pass a CausalMap or a DataFrame with source, target, "
            "pvalue and optionally delta (the effect used to break p-value ties)"
        )
    table = candidates.assign(
        source=candidates["source"].astype(str),
        target=candidates["target"].astype(str),
        delta=candidates["delta"] if "delta" in candidates.columns else 0.0,
    )
    grouped = table.groupby(["source", "target"], sort=True)
    ranked = grouped.agg(
        pvalue=("pvalue", "min"), effect=("delta", "mean"), n=("pvalue", "size")
    ).reset_index()
    ranked["pvalue"] = np.minimum(1.0, ranked["pvalue"] * ranked["n"])
    ranked["_abs"] = -ranked["effect"].abs()
    order = ["pvalue", "_abs", "source", "target"]
    return ranked.sort_values(order, kind="stable").reset_index(drop=True)


def precision_recall(
    called: CausalMap | pd.DataFrame,
    truth: pd.DataFrame,
    *,
    sources: Iterable[str] | None = None,
    genes: Iterable[str] | None = None,
    reach: bool = False,
    directed: bool = True,
    overlap: bool = False,
) -> PrecisionRecall:
    """Precision-recall curve and average precision of a map's ranked candidate edges.

    Every pair the map tested is ranked by its p-value (the smallest over contexts times their
    number, as :func:`causal_map` combines FDRs), ties broken by the larger absolute effect
    (``delta``: the expression change for :func:`causal_map`, Pearson ``r`` for
    :func:`correlation_map`).

    Parameters
    ----------
    called
        A :class:`CausalMap` (its :attr:`~CausalMap.tests` are ranked) or a DataFrame of
        candidates with ``source``, ``target``, ``pvalue`` and optionally ``delta`` (rows of
        the same pair are combined like contexts).
    truth, sources, genes, reach, directed, overlap
        As for :func:`score_map`: the known network and the universe of pairs scored.

    Returns
    -------
    PrecisionRecall
        The curve, the average precision, and :meth:`PrecisionRecall.at` for the precision
        and recall of the top ``k`` pairs.
    """
    candidates = called.tests if isinstance(called, CausalMap) else called
    source_set, gene_set = _universe(called, truth, sources, genes, overlap, directed)
    true = _true_in(truth, source_set, gene_set, reach=reach, directed=directed)
    ranked = _ranked(candidates)
    keep = (
        ranked["source"].isin(source_set)
        & ranked["target"].isin(gene_set)
        & (ranked["source"] != ranked["target"])
    )
    ranked = ranked[keep].reset_index(drop=True)
    is_true = np.array([p in true for p in zip(ranked["source"], ranked["target"], strict=True)])
    hits = np.cumsum(is_true)
    ranked["true"] = is_true
    ranked["precision"] = hits / np.arange(1, len(ranked) + 1)
    ranked["recall"] = hits / len(true) if true else np.nan
    pairs = len(source_set) * len(gene_set) - len(source_set & gene_set)
    return PrecisionRecall(
        curve=ranked[list(CURVE_COLUMNS)],
        average_precision=_average_precision(ranked, hits, len(true)),
        true=len(true),
        pairs=pairs,
    )


def _average_precision(ranked: pd.DataFrame, hits: np.ndarray, n_true: int) -> float:
    if n_true == 0:
        return float("nan")
    if len(ranked) == 0:
        return 0.0
    key = ranked[["pvalue", "_abs"]].to_numpy()
    last = np.r_[np.any(key[1:] != key[:-1], axis=1), True]  # last row of each tie group
    tp = hits[last]
    precision = tp / (np.flatnonzero(last) + 1)
    gain = np.diff(np.r_[0, tp]) / n_true
    return float(np.sum(gain * precision))
