"""Signature data: training rows of gene scores per (context, perturbation), and what to predict.

``scores`` is the AnnData of :meth:`celltwin.io.RankSignatures.to_scores`: ``obs`` ``context``
and ``perturbation`` (pairs unique), ``X`` the gene scores. ``NaN`` in ``X`` means "gene not
measured for this signature" (e.g. a full ranking that did not test it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION


@dataclass(frozen=True)
class SignatureData:
    """Training signatures as rows plus a (context, perturbation) -> row index.

    Attributes
    ----------
    genes
        Column names of ``x``.
    contexts, perturbations
        Sorted distinct labels of the rows.
    x
        ``(rows, genes)`` float64 scores; ``NaN`` = gene not measured for that signature.
    row_context, row_perturbation
        Index into ``contexts`` / ``perturbations`` of each row.
    index
        ``(contexts, perturbations)`` int array: the row of each pair, ``-1`` when not measured.
    """

    genes: list[str]
    contexts: list[str]
    perturbations: list[str]
    x: np.ndarray
    row_context: np.ndarray
    row_perturbation: np.ndarray
    index: np.ndarray

    @classmethod
    def from_pairs(
        cls, x: np.ndarray, contexts: Sequence[str], perturbations: Sequence[str], genes: list[str]
    ) -> SignatureData:
        """Build from row-aligned context and perturbation labels."""
        ctx = np.asarray(contexts, dtype=object).astype(str)
        pert = np.asarray(perturbations, dtype=object).astype(str)
        c_names, c_idx = np.unique(ctx, return_inverse=True)
        p_names, p_idx = np.unique(pert, return_inverse=True)
        index = np.full((c_names.size, p_names.size), -1, dtype=np.int64)
        index[c_idx, p_idx] = np.arange(ctx.size)
        if (index >= 0).sum() != ctx.size:
            first = int(
                np.flatnonzero(pd.Series(list(zip(ctx, pert, strict=True))).duplicated())[0]
            )
            raise ValueError(
                f"(context, perturbation) pairs must be unique; ({ctx[first]!r}, "
                f"{pert[first]!r}) appears more than once. Fix: keep one signature "
                "per pair (RankSignatures enforces this)."
            )
        return cls(
            genes=list(genes),
            contexts=[str(c) for c in c_names],
            perturbations=[str(p) for p in p_names],
            x=np.asarray(x, dtype=np.float64),
            row_context=c_idx.astype(np.int64),
            row_perturbation=p_idx.astype(np.int64),
            index=index,
        )

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        """``x`` with each missing gene score set to its context's mean, and those means.

        Returns ``(x_filled, context_means)`` with ``context_means`` of shape
        ``(contexts, genes)``; a gene measured in none of a context's rows gets 0 (the neutral
        score of every transform).
        """
        means = np.zeros((len(self.contexts), len(self.genes)))
        out = self.x.copy()
        for c in range(len(self.contexts)):
            rows = np.flatnonzero(self.row_context == c)
            means[c] = nanmean_rows(self.x[rows])
            block = out[rows]
            missing = np.isnan(block)
            if missing.any():
                block[missing] = np.broadcast_to(means[c], block.shape)[missing]
                out[rows] = block
        return out, means


def nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Column means over the non-NaN entries; 0 where a column has none (no warning)."""
    present = ~np.isnan(x)
    count = present.sum(axis=0)
    total = np.where(present, x, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def scores_data(scores: AnnData, *, where: str) -> SignatureData:
    if not isinstance(scores, AnnData):
        raise TypeError(f"{where}: 'scores' must be an AnnData (got {type(scores).__name__}).")
    missing = [k for k in (CONTEXT, PERTURBATION) if k not in scores.obs.columns]
    if missing:
        raise KeyError(
            f"{where}: scores.obs has no column {missing[0]!r} (columns: "
            f"{list(scores.obs.columns)}). Fix: build scores with RankSignatures.to_scores()."
        )
    if scores.n_obs == 0:
        raise ValueError(f"{where}: 'scores' has no rows. Fix: pass the training signatures.")
    if not scores.var_names.is_unique:
        dup = scores.var_names[scores.var_names.duplicated()][:3].tolist()
        raise ValueError(f"{where}: var_names must be unique genes (duplicated: {dup}).")
    x = scores.X.toarray() if sp.issparse(scores.X) else np.asarray(scores.X)
    x = np.asarray(x, dtype=np.float64)
    if np.isinf(x).any():
        raise ValueError(
            f"{where}: scores.X holds infinite values. Fix: use finite scores, NaN for genes "
            "not measured."
        )
    return SignatureData.from_pairs(
        x,
        scores.obs[CONTEXT].astype(str).to_numpy(),
        scores.obs[PERTURBATION].astype(str).to_numpy(),
        [str(g) for g in scores.var_names],
    )


def signature_conditions(conditions: pd.DataFrame | Sequence[Sequence[str]]) -> pd.DataFrame:
    """Normalise what to predict into a table with columns ``context`` and ``perturbation``.

    Accepts a DataFrame with those columns or a sequence of ``(context, perturbation)`` pairs.
    """
    if isinstance(conditions, pd.DataFrame):
        missing = [c for c in (CONTEXT, PERTURBATION) if c not in conditions.columns]
        if missing:
            raise KeyError(
                f"conditions has no column {missing[0]!r} (columns: {list(conditions.columns)}). "
                f"Fix: pass a DataFrame with columns {CONTEXT!r} and {PERTURBATION!r}."
            )
        table = pd.DataFrame(
            {
                CONTEXT: conditions[CONTEXT].astype(str).to_numpy(dtype=object),
                PERTURBATION: conditions[PERTURBATION].astype(str).to_numpy(dtype=object),
            }
        )
    elif isinstance(conditions, str) or not isinstance(conditions, Sequence):
        raise TypeError(
            "'conditions' must be a DataFrame or a list of (context, perturbation) pairs "
            f"(got {type(conditions).__name__}). Fix: conditions=[('RPE1', 'MED1')]."
        )
    else:
        rows = []
        for row in conditions:
            if isinstance(row, str) or len(row) != 2:
                raise ValueError(f"each condition must be (context, perturbation) (got {row!r}).")
            rows.append((str(row[0]), str(row[1])))
        table = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION], dtype=object)
    if len(table) == 0:
        raise ValueError("'conditions' is empty. Fix: list at least one pair to predict.")
    return table
