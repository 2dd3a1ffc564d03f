"""The rank-sum DE test of groups of identical cells, in closed form (the mean baseline's DE)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ._de import DEResult, _mwu_pvalue, benjamini_hochberg, log2_fold_change

__all__ = ["constant_group_de"]

#: Genes per block when the control cells are densified.
_GENE_BLOCK = 1024


def constant_group_de(
    profiles: NDArray[np.float64],
    control: Any,
    *,
    n_cells: NDArray[np.int64],
    groups: NDArray[np.str_],
) -> DEResult:
    """Rank-sum test of groups of identical cells (one profile each) against control cells.

    Exactly :func:`~celltwin.eval.rank_sum_test` on ``n_cells[i]`` copies of ``profiles[i]``
    stacked with ``control``, without building them: per gene, a group value ``v`` outranks the
    control values below it and ties with those equal, so ``U = n (below + equal / 2)``, and its
    ``n`` copies join the tie block of the control values equal to ``v``.

    Parameters
    ----------
    profiles
        ``(P, G)`` one profile per group.
    control
        ``(n_c, G)`` control cells, dense or sparse.
    n_cells
        ``(P,)`` copies of each profile.
    groups
        ``(P,)`` group labels (kept in this order).
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    n_groups, n_genes = profiles.shape
    n_c = control.shape[0]
    n = np.asarray(n_cells, dtype=np.float64)
    u_stat = np.empty((n_groups, n_genes))
    tie = np.empty((n_groups, n_genes))
    control_sum = np.zeros(n_genes)
    csc = sp.csc_matrix(control) if sp.issparse(control) else None
    for start in range(0, n_genes, _GENE_BLOCK):
        stop = min(start + _GENE_BLOCK, n_genes)
        block = (
            csc[:, start:stop].toarray() if csc is not None else np.asarray(control)[:, start:stop]
        )
        # Compared in float64, as when the copies are stacked with float32 controls (cell-eval).
        ordered = np.sort(block, axis=0).astype(np.float64)
        control_sum[start:stop] = ordered.sum(axis=0)
        for j in range(stop - start):
            u_stat[:, start + j], tie[:, start + j] = _u_and_tie(
                ordered[:, j], profiles[:, start + j], n
            )
    pvalue = _mwu_pvalue(u_stat, n[:, None], float(n_c), tie)
    control_mean = control_sum / n_c
    return DEResult(
        groups=np.asarray(groups, dtype=str),
        n_cells=np.asarray(n_cells, dtype=np.int64),
        n_control=int(n_c),
        log2_fold_change=log2_fold_change(profiles, control_mean[None, :]),
        pvalue=pvalue,
        fdr=benjamini_hochberg(pvalue, axis=1),
        statistic=u_stat,
        method="wilcoxon",
    )


def _u_and_tie(
    column: NDArray[np.float64], values: NDArray[np.float64], n: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """U statistic and tie term of one gene: ``n[i]`` copies of ``values[i]`` against the sorted
    control values ``column``."""
    below = np.searchsorted(column, values, side="left")
    equal = np.searchsorted(column, values, side="right") - below
    u_stat = n * (below + 0.5 * equal)
    # Tie term of the control alone, then each group's copies merged into their block.
    _, run = np.unique(column, return_counts=True)
    run = run.astype(np.float64)
    base = float(np.sum(run**3 - run))
    e = equal.astype(np.float64)
    merged = e + n
    return u_stat, base - (e**3 - e) + (merged**3 - merged)
