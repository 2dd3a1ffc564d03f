"""Differential expression of every perturbed group against its control.

Two tests, each returning one :class:`DEResult` (groups x genes arrays):

- :func:`rank_sum_test`: Wilcoxon rank-sum / Mann-Whitney U, normal approximation with tie
  correction and continuity correction, two-sided. This is what ``scipy.stats.mannwhitneyu(x, y,
  method="asymptotic", use_continuity=True)`` computes and what pdex (cell-eval 0.8's DE engine,
  through ``numba_mwu``) computes; the p-values agree with scipy to 1e-8 (tests).
- :func:`welch_t_test`: Welch's unequal-variance t-test, as ``scipy.stats.ttest_ind(...,
  equal_var=False)`` and scanpy's ``rank_genes_groups(method="t-test")`` (which GEARS uses to pick
  its top-20 DE genes).

Both report the log2 fold change the way pdex does for log1p data (cell-eval pins pdex's
``epsilon=0``): ``log2(expm1(mean_group) / expm1(mean_control))`` where the means are taken over the
log1p values (a geometric mean back-transformed to count space); ``0/0`` is reported as ``0`` and a
one-sided zero as ``+-inf``. FDR is Benjamini-Hochberg over the genes of each group separately
(``scipy.stats.false_discovery_control``), as pdex does.

How the rank-sum test stays fast on sparse data: the matrix is read one gene (CSC column) at a time
and only the stored non-zeros are ranked; the zeros of all cells form one tie block whose
contribution to U and to the tie correction is added in closed form. Per gene, the non-zero values
of the control and of *all* groups are sorted once, together (a linear-time radix sort on the
float bits), so the control is ranked once and every group is merged against it from that single
order: a running count of control values gives, for each distinct value, the control values below
and equal to it, and ``U = sum over the group's values of (control values below + half the equal
ones)``. The tie term is the control's plus, for every value occurring more than once, the change
from merging the group's copies with the control's; values occurring once (most, in continuous
data) cost nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy import stats as sps

from .._keys import CONTROL

__all__ = [
    "DEResult",
    "benjamini_hochberg",
    "log2_fold_change",
    "rank_sum_test",
    "top_de_genes",
    "welch_t_test",
]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class DEResult:
    """Per (group, gene) differential expression of each group against the control.

    Attributes
    ----------
    groups
        Group labels, sorted, control excluded (shape ``(P,)``).
    n_cells
        Cells per group (shape ``(P,)``).
    n_control
        Control cells.
    log2_fold_change, pvalue, fdr, statistic
        Arrays of shape ``(P, G)``. ``statistic`` is the Mann-Whitney U of the group
        (``method="wilcoxon"``) or Welch's t (``method="welch"``).
    method
        ``"wilcoxon"`` or ``"welch"``.
    """

    groups: NDArray[np.str_]
    n_cells: NDArray[np.int64]
    n_control: int
    log2_fold_change: NDArray[np.float64]
    pvalue: NDArray[np.float64]
    fdr: NDArray[np.float64]
    statistic: NDArray[np.float64]
    method: Literal["wilcoxon", "welch"]

    def select(self, groups: ArrayLike) -> DEResult:
        """Return the rows of ``groups``, in that order (a missing label raises ``KeyError``)."""
        wanted = np.asarray(groups, dtype=str)
        position = {g: i for i, g in enumerate(self.groups.tolist())}
        missing = [g for g in wanted.tolist() if g not in position]
        if missing:
            raise KeyError(
                f"groups {missing[:5]} are not in this DEResult (it has {len(self.groups)} groups, "
                f"e.g. {self.groups[:3].tolist()}); run the test on data containing them"
            )
        rows = np.array([position[g] for g in wanted.tolist()], dtype=np.int64)
        return DEResult(
            groups=self.groups[rows],
            n_cells=self.n_cells[rows],
            n_control=self.n_control,
            log2_fold_change=self.log2_fold_change[rows],
            pvalue=self.pvalue[rows],
            fdr=self.fdr[rows],
            statistic=self.statistic[rows],
            method=self.method,
        )


def benjamini_hochberg(pvalues: ArrayLike, *, axis: int = -1) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (FDR) along ``axis``.

    Same arithmetic as ``scipy.stats.false_discovery_control(p, method="bh")``, vectorised over the
    other axes (one family per row of a groups x genes matrix).
    """
    p = np.moveaxis(np.asarray(pvalues, dtype=np.float64), axis, -1)
    m = p.shape[-1]
    if m == 0:
        return np.moveaxis(p.copy(), -1, axis)
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1)
    ranked *= m / np.arange(1, m + 1, dtype=np.float64)
    np.minimum.accumulate(ranked[..., ::-1], out=ranked[..., ::-1], axis=-1)
    out = np.empty_like(ranked)
    np.put_along_axis(out, order, ranked, axis=-1)
    return np.moveaxis(np.clip(out, 0.0, 1.0), -1, axis)


def log2_fold_change(group_mean: ArrayLike, control_mean: ArrayLike) -> NDArray[np.float64]:
    """pdex's log2 fold change for log1p data: ``log2(expm1(group_mean) / expm1(control_mean))``.

    The means are means of log1p values. A gene at zero in both is ``0`` (no change); at zero on
    one side only it is ``+inf`` or ``-inf`` (pdex with ``epsilon=0``, as cell-eval 0.8 runs it).
    Computed in float64; pdex works in the input's float32, so on float32 data the two differ by
    about 1e-5 relative (benchmarks/eval_parity.py), too little to change DES there.
    """
    num = np.expm1(np.asarray(group_mean, dtype=np.float64))
    den = np.expm1(np.asarray(control_mean, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        lfc = np.log2(num / den)
    lfc[np.isnan(lfc)] = 0.0
    return lfc


def top_de_genes(statistic: ArrayLike, *, k: int = 20) -> NDArray[np.int64]:
    """Column indices of the ``k`` genes with the largest ``|statistic|`` in each row.

    With Welch t statistics this is how GEARS picks its "top 20 DE genes" (scanpy
    ``rank_genes_groups(method="t-test", rankby_abs=True)``). Ties keep gene order; NaN counts as 0.

    Returns
    -------
    Array of shape ``(P, min(k, G))``, most differential first.
    """
    s = np.abs(np.nan_to_num(np.asarray(statistic, dtype=np.float64), nan=0.0))
    if s.ndim != 2:
        raise ValueError(f"statistic must be 2-D (groups x genes), got shape {s.shape}")
    if k < 1:
        raise ValueError(f"'k' must be >= 1 (got {k})")
    order = np.argsort(-s, axis=1, kind="stable")
    return order[:, : min(k, s.shape[1])].astype(np.int64)


def rank_sum_test(
    X: ArrayLike | sp.spmatrix, labels: ArrayLike, *, control: str = CONTROL
) -> DEResult:
    """Wilcoxon rank-sum (Mann-Whitney U) test of every group against the control, per gene.

    Two-sided, normal approximation with tie correction and continuity correction; identical to
    ``scipy.stats.mannwhitneyu(group, control, method="asymptotic", use_continuity=True)`` per
    gene, and to pdex / cell-eval 0.8. When every value of a gene is tied the p-value is 1.

    Parameters
    ----------
    X
        Cells x genes, dense or sparse (CSR/CSC), typically log1p-normalised expression.
        Must not contain NaN.
    labels
        Group label of each cell (length ``X.shape[0]``).
    control
        Label of the reference group.

    Returns
    -------
    DEResult with ``statistic`` = U of the group (``U1`` in scipy's terms).
    """
    prep = _prepare(X, labels, control)
    n_groups = len(prep.groups)
    n_genes = prep.csc.shape[1]
    # Genes x groups while filling (contiguous rows), transposed at the end.
    u_stat = np.zeros((n_genes, n_groups), dtype=np.float64)
    tie_term = np.zeros((n_genes, n_groups), dtype=np.float64)
    sums = np.zeros((n_genes, n_groups + 1), dtype=np.float64)
    indptr, indices, data = prep.csc.indptr, prep.csc.indices, prep.csc.data
    n_g = prep.n_cells.astype(np.float64)
    n_c = float(prep.n_control)
    for j in range(n_genes):
        values = data[indptr[j] : indptr[j + 1]]
        codes = prep.code[indices[indptr[j] : indptr[j + 1]]]
        sums[j] = np.bincount(codes, values.astype(np.float64), minlength=n_groups + 1)
        _rank_sum_gene(values, codes, n_groups, n_g, n_c, u_stat[j], tie_term[j])
    u_stat, tie_term = u_stat.T.copy(), tie_term.T
    pvalue = _mwu_pvalue(u_stat, n_g[:, None], n_c, tie_term)
    means, ctrl_mean = _means_from_sums(sums.T, prep)
    return DEResult(
        groups=prep.groups,
        n_cells=prep.n_cells,
        n_control=prep.n_control,
        log2_fold_change=log2_fold_change(means, ctrl_mean[None, :]),
        pvalue=pvalue,
        fdr=benjamini_hochberg(pvalue, axis=1),
        statistic=u_stat,
        method="wilcoxon",
    )


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
    means, ctrl_mean = _means_from_sums(_group_sums(prep), prep)
    sq_means, ctrl_sq_mean = _means_from_sums(_group_sums(prep, squared=True), prep)
    n_g = prep.n_cells.astype(np.float64)[:, None]
    n_c = float(prep.n_control)
    with np.errstate(divide="ignore", invalid="ignore"):
        # E[x^2] - E[x]^2 as scanpy computes it, clipped at 0 against rounding.
        var_g = np.clip(sq_means - means**2, 0.0, None) * n_g / (n_g - 1.0)
        var_c = np.clip(ctrl_sq_mean - ctrl_mean**2, 0.0, None) * n_c / (n_c - 1.0)
        se2_g = var_g / n_g
        se2_c = var_c[None, :] / n_c
        se2 = se2_g + se2_c
        t = (means - ctrl_mean[None, :]) / np.sqrt(se2)
        df = se2**2 / (se2_g**2 / (n_g - 1.0) + se2_c**2 / (n_c - 1.0))
        pvalue = 2.0 * sps.t.sf(np.abs(t), df)
    undefined = ~np.isfinite(t) | ~np.isfinite(pvalue)
    t[undefined] = 0.0
    pvalue[undefined] = 1.0
    pvalue = np.clip(pvalue, 0.0, 1.0)
    return DEResult(
        groups=prep.groups,
        n_cells=prep.n_cells,
        n_control=prep.n_control,
        log2_fold_change=log2_fold_change(means, ctrl_mean[None, :]),
        pvalue=pvalue,
        fdr=benjamini_hochberg(pvalue, axis=1),
        statistic=t,
        method="welch",
    )


# --- internals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    csc: sp.csc_matrix  # cells x genes, column access
    code: NDArray[np.int64]  # per cell: 0..P-1 for groups, P for control, P+1 for dropped
    groups: NDArray[np.str_]
    n_cells: NDArray[np.int64]
    n_control: int


def _prepare(X: ArrayLike | sp.spmatrix, labels: ArrayLike, control: str) -> _Prepared:
    lab = np.asarray(labels).astype(str)
    n_obs = X.shape[0]
    if lab.ndim != 1 or lab.shape[0] != n_obs:
        raise ValueError(
            f"labels must have one entry per cell: got shape {lab.shape} for X with {n_obs} rows"
        )
    uniq, inv = np.unique(lab, return_inverse=True)
    ctrl_pos = np.flatnonzero(uniq == control)
    if ctrl_pos.size == 0:
        raise ValueError(
            f"control label {control!r} not found among labels (e.g. {uniq[:5].tolist()}); "
            "pass control=<the reference group's label>"
        )
    ctrl_idx = int(ctrl_pos[0])
    groups = np.delete(uniq, ctrl_idx)
    n_groups = len(groups)
    # Groups keep their sorted order; the control gets the code after the last group.
    code = np.where(inv < ctrl_idx, inv, inv - 1).astype(np.int64)
    code[inv == ctrl_idx] = n_groups
    counts = np.bincount(code, minlength=n_groups + 1)
    if sp.issparse(X):
        csc = sp.csc_matrix(X)
        if not csc.has_canonical_format:
            csc = csc.copy()
            csc.sum_duplicates()
    else:
        csc = sp.csc_matrix(np.asarray(X))
    if csc.data.size and np.isnan(csc.data).any():
        raise ValueError("X contains NaN; remove or impute them before differential expression")
    return _Prepared(
        csc=csc,
        code=code,
        groups=groups,
        n_cells=counts[:n_groups].astype(np.int64),
        n_control=int(counts[n_groups]),
    )


def _group_sums(prep: _Prepared, *, squared: bool = False) -> NDArray[np.float64]:
    """Sums over cells of X (or X**2) per group, control last: shape ``(P + 1, G)``, float64.

    Accumulated per gene in float64 exactly as :func:`rank_sum_test` does, so both tests report
    identical fold changes.
    """
    n_groups = len(prep.groups)
    n_genes = prep.csc.shape[1]
    indptr, indices, data = prep.csc.indptr, prep.csc.indices, prep.csc.data
    sums = np.zeros((n_genes, n_groups + 1), dtype=np.float64)
    for j in range(n_genes):
        values = data[indptr[j] : indptr[j + 1]].astype(np.float64)
        if squared:
            values = values * values
        codes = prep.code[indices[indptr[j] : indptr[j + 1]]]
        sums[j] = np.bincount(codes, values, minlength=n_groups + 1)
    return sums.T


def _means_from_sums(
    sums: NDArray[np.float64], prep: _Prepared
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split ``(P + 1, G)`` sums into group means ``(P, G)`` and control means ``(G,)``."""
    counts = np.append(prep.n_cells, prep.n_control).astype(np.float64)
    means = sums / counts[:, None]
    return means[:-1], means[-1]


def _rank_sum_gene(
    values: NDArray,
    codes: NDArray[np.int64],
    n_groups: int,
    n_g: NDArray[np.float64],
    n_c: float,
    u_out: NDArray[np.float64],
    tie_out: NDArray[np.float64],
) -> None:
    """U of every group vs the control, and the tie term sum(t^3 - t), for one gene.

    ``values``/``codes`` are the gene's stored entries and their cells' group codes (control =
    ``n_groups``); every other cell is zero. Writes into ``u_out`` and ``tie_out``.
    """
    nonzero = values != 0  # explicitly stored zeros belong to the zero block
    if not nonzero.all():
        values, codes = values[nonzero], codes[nonzero]
    m = values.shape[0]
    nnz_c = float(np.count_nonzero(codes == n_groups))
    z_c = n_c - nnz_c  # control cells at zero
    z_g = n_g - np.bincount(codes, minlength=n_groups + 1)[:n_groups]
    # The zero block: group zeros tie with control zeros.
    tie_out[:] = (z_c + z_g) ** 3 - (z_c + z_g)
    u_out[:] = 0.5 * z_g * z_c
    if m == 0:
        return
    order = _sort_order(values)
    sv = values[order]
    sg = codes[order]
    new_run = np.empty(m, dtype=bool)
    new_run[0] = True
    np.not_equal(sv[1:], sv[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    run_id = np.cumsum(new_run) - 1
    is_c = sg == n_groups
    c_cum = np.concatenate(([0], np.cumsum(is_c)))
    c_below = c_cum[starts]  # control non-zeros below each distinct value
    c_equal = np.diff(np.append(c_below, c_cum[-1]))  # control non-zeros equal to it
    # Control cells at zero sit below positive values; negative values sit below zero, so group
    # zeros are above the control's negative values.
    c_below = c_below + z_c * (sv[starts] > 0)
    neg_c = float(np.count_nonzero(is_c & (sv < 0)))
    u_out += z_g * neg_c
    grp = ~is_c
    g_code = sg[grp]
    g_run = run_id[grp]
    u_out += np.bincount(g_code, c_below[g_run] + 0.5 * c_equal[g_run], minlength=n_groups)
    c_equal = c_equal.astype(np.float64)
    tie_out += float(np.sum(c_equal**3 - c_equal))
    # Only values occurring more than once can contribute to a tie term.
    run_len = np.diff(np.append(starts, m))
    tied = run_len[g_run] > 1
    if tied.any():
        pair, t_g = np.unique(g_run[tied] * n_groups + g_code[tied], return_counts=True)
        pair_run = pair // n_groups
        t_c = c_equal[pair_run]
        merged = t_c + t_g
        tie_out += np.bincount(
            pair % n_groups, (merged**3 - merged) - (t_c**3 - t_c), minlength=n_groups
        )


def _sort_order(values: NDArray) -> NDArray[np.intp]:
    """Stable sorting permutation of a float array, by LSD radix sort on 16-bit digits.

    The IEEE-754 bit pattern, with the sign bit flipped for positives and all bits flipped for
    negatives, orders like the floats themselves; numpy's stable argsort of 16-bit integers is a
    linear-time radix sort, several times faster than sorting the floats (the cost of this test).
    """
    if values.dtype == np.float32:
        bits, width, sign = values.view(np.uint32), 2, np.uint32(1 << 31)
    else:
        values = np.ascontiguousarray(values, dtype=np.float64)
        bits, width, sign = values.view(np.uint64), 4, np.uint64(1 << 63)
    key = np.where(bits & sign, ~bits, bits | sign)
    order: NDArray[np.intp] | None = None
    for k in range(width):
        digit = (key >> (16 * k)).astype(np.uint16)  # truncation keeps the low 16 bits
        order = (
            np.argsort(digit, kind="stable")
            if order is None
            else order[np.argsort(digit[order], kind="stable")]
        )
    assert order is not None
    return order


def _mwu_pvalue(
    u1: NDArray[np.float64], n1: NDArray[np.float64], n2: float, tie_term: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Two-sided asymptotic p-value with continuity correction, as scipy's ``_get_mwu_z``."""
    u2 = n1 * n2 - u1
    u = np.maximum(u1, u2)
    mu = n1 * n2 / 2.0
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0))))
        z = (u - mu - 0.5) / s
    p = 2.0 * special.ndtr(-z)
    # All values tied: s = 0 and z = -inf gives p = 2 before clipping, i.e. p = 1.
    return np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)
