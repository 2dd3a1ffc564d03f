"""Welch's t-test of every group against the control, and its top DE genes (GEARS's choice).

Group means and sums of squares come from the same compiled sums as :func:`rank_sum_test`'s
fold changes (:mod:`._de`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .._keys import CONTROL
from ._de import (
    DEResult,
    _group_sums,
    _means_from_sums,
    _prepare,
    _Prepared,
    benjamini_hochberg,
    log2_fold_change,
    top_de_genes,
)

__all__ = ["welch_from_moments", "welch_t_test", "welch_top_de"]


def welch_t_test(
    X: ArrayLike | sp.spmatrix, labels: ArrayLike, *, control: str = CONTROL
) -> DEResult:
    """Welch's t-test of every group against the control, per gene.

    Equal to ``scipy.stats.ttest_ind(group, control, equal_var=False)`` (variances with ``ddof=1``).
    Where the statistic is undefined (both variances zero, or fewer than 2 cells) it is reported as
    ``t = 0, p = 1``, as scanpy does, instead of NaN.

    Parameters
    ----------
    X
        Cells x genes, dense or sparse.
    labels
        Group label of each cell.
    control
        Label of the reference group.

    Returns
    -------
    DEResult with ``statistic`` = Welch's t of group minus control.
    """
    prep = _prepare(X, labels, control)
    means, ctrl_mean, var_g, var_c = _moments(prep)
    return welch_from_moments(
        prep.groups, prep.n_cells, means, var_g, n_control=prep.n_control,
        control_mean=ctrl_mean, control_var=var_c,
    )  # fmt: skip


def welch_from_moments(
    groups: NDArray[np.str_],
    n_cells: NDArray[np.int64],
    means: NDArray[np.float64],
    var: NDArray[np.float64],
    *,
    n_control: int,
    control_mean: NDArray[np.float64],
    control_var: NDArray[np.float64],
) -> DEResult:
    """Welch's t-test from each group's and the control's mean and variance (``ddof=1``).

    What :func:`welch_t_test` computes once it has the moments; a streamed pseudobulk
    (:func:`celltwin.pp.pseudobulk`: ``X`` and ``layers['var']``) gives them in one pass.
    """
    from scipy import stats as sps  # imported here: scipy.stats is slow to import

    ctrl_mean = np.asarray(control_mean, dtype=np.float64)
    t, df = _t_and_df(
        np.asarray(means, dtype=np.float64), ctrl_mean, np.asarray(var, dtype=np.float64),
        np.asarray(control_var, dtype=np.float64), np.asarray(n_cells, dtype=np.float64),
        float(n_control),
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        pvalue = 2.0 * sps.t.sf(np.abs(t), df)
    undefined = ~np.isfinite(t) | ~np.isfinite(pvalue)
    t[undefined] = 0.0
    pvalue[undefined] = 1.0
    pvalue = np.clip(pvalue, 0.0, 1.0)
    return DEResult(
        groups=np.asarray(groups),
        n_cells=np.asarray(n_cells, dtype=np.int64),
        n_control=int(n_control),
        log2_fold_change=log2_fold_change(means, ctrl_mean[None, :]),
        pvalue=pvalue,
        fdr=benjamini_hochberg(pvalue, axis=1),
        statistic=t,
        method="welch",
    )


def welch_top_de(
    X: ArrayLike | sp.spmatrix, labels: ArrayLike, groups: ArrayLike, *, control: str, k: int
) -> NDArray[np.int64]:
    """``top_de_genes(welch_t_test(X, labels, control=control).select(groups).statistic, k=k)``
    without the p-values, FDR and fold changes it does not use (same genes, same order).

    ``welch_t_test`` sets ``t = 0`` where ``t`` or its p-value is not finite; for a finite
    ``t`` the p-value ``2 * t.sf(|t|, df)`` is finite exactly when ``df > 0`` (``inf``: the
    normal distribution), so the same rule is applied without computing it.
    """
    prep = _prepare(X, labels, control)
    _, _, t, df = _welch(prep)
    with np.errstate(invalid="ignore"):
        t[~np.isfinite(t) | ~(df > 0)] = 0.0
    position = {g: i for i, g in enumerate(prep.groups.tolist())}
    rows = np.array([position[g] for g in np.asarray(groups, dtype=str).tolist()], dtype=np.int64)
    return top_de_genes(t[rows], k=k)


def _moments(prep: _Prepared) -> tuple[NDArray[np.float64], ...]:
    """Group means, control means, group variances and control variances (``ddof=1``)."""
    means, ctrl_mean = _means_from_sums(_group_sums(prep), prep)
    sq_means, ctrl_sq_mean = _means_from_sums(_group_sums(prep, squared=True), prep)
    n_g = prep.n_cells.astype(np.float64)[:, None]
    n_c = float(prep.n_control)
    with np.errstate(divide="ignore", invalid="ignore"):
        # E[x^2] - E[x]^2 as scanpy computes it, clipped at 0 against rounding.
        var_g = np.clip(sq_means - means**2, 0.0, None) * n_g / (n_g - 1.0)
        var_c = np.clip(ctrl_sq_mean - ctrl_mean**2, 0.0, None) * n_c / (n_c - 1.0)
    return means, ctrl_mean, var_g, var_c


def _t_and_df(
    means: NDArray[np.float64],
    ctrl_mean: NDArray[np.float64],
    var_g: NDArray[np.float64],
    var_c: NDArray[np.float64],
    n_cells: NDArray[np.float64],
    n_c: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Welch's t of each group minus the control and its degrees of freedom (``(P, G)``)."""
    n_g = n_cells[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        se2_g = var_g / n_g
        se2_c = var_c[None, :] / n_c
        se2 = se2_g + se2_c
        t = (means - ctrl_mean[None, :]) / np.sqrt(se2)
        df = se2**2 / (se2_g**2 / (n_g - 1.0) + se2_c**2 / (n_c - 1.0))
    return t, df


def _welch(prep: _Prepared) -> tuple[NDArray[np.float64], ...]:
    """Group means, control means, Welch's t and its degrees of freedom (``(P, G)``)."""
    means, ctrl_mean, var_g, var_c = _moments(prep)
    t, df = _t_and_df(
        means, ctrl_mean, var_g, var_c, prep.n_cells.astype(np.float64), float(prep.n_control)
    )
    return means, ctrl_mean, t, df
