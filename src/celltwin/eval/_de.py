"""Differential expression of every perturbed group against its control.

Two tests, each returning one :class:`DEResult` (groups x genes arrays):

- :func:`rank_sum_test`: Wilcoxon rank-sum / Mann-Whitney U, normal approximation with tie
  correction and continuity correction, two-sided. This is what ``scipy.stats.mannwhitneyu(x, y,
  method="asymptotic", use_continuity=True)`` computes and what pdex (cell-eval 0.8's DE engine,
  through ``numba_mwu``) computes; the p-values agree with scipy to 1e-8 (tests).
- :func:`welch_t_test` (in :mod:`._de_welch`): Welch's unequal-variance t-test, as ``scipy.stats.ttest_ind(...,
  equal_var=False)`` and scanpy's ``rank_genes_groups(method="t-test")`` (which GEARS uses to pick
  its top-20 DE genes).

Both report the log2 fold change the way pdex does for log1p data (cell-eval pins pdex's
``epsilon=0``): ``log2(expm1(mean_group) / expm1(mean_control))`` where the means are taken over the
log1p values (a geometric mean back-transformed to count space); ``0/0`` is reported as ``0`` and a
one-sided zero as ``+-inf``. FDR is Benjamini-Hochberg over the genes of each group separately
(``scipy.stats.false_discovery_control``), as pdex does.

How the rank-sum test stays fast on sparse data. Every group is compared with the same control, so
per gene only the control's values need sorting: a group's ``U`` is the sum, over its values ``x``,
of (control values below ``x``) + half (control values equal to ``x``). Per gene, the control's
non-zero values are bucket-sorted on a uniform grid (a monotone map, so a group value is compared
only with the control values of its own bucket, usually none or one); the zeros of the control
and of the group form one tie block, added in closed form (zeros sit above negative values and
below positive ones). The tie term ``sum(t^3 - t)`` of the pooled sample is the control's, plus the
zero block, plus, for each group value, the change from adding it to the tie block of the equal
control values and of its earlier copies in the group (counted in a small table; no sort of the
group's values). The CSR matrix is never converted as a whole: a compiled kernel (numba, in
:mod:`._de_kernels`) gathers the stored values of a block of genes from every row into per-gene
runs ordered by group (control last) and tests the block; ranges of genes run in parallel threads
and memory stays bounded by one block per thread. Everything is exact: U equals scipy's, the tie
term is an exact integer.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy import special

from .._keys import CONTROL

__all__ = [
    "DEResult",
    "benjamini_hochberg",
    "log2_fold_change",
    "rank_sum_test",
    "top_de_genes",
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

    def to_frame(self, genes: ArrayLike | None = None) -> pd.DataFrame:
        """One row per (group, gene): group, gene, log2_fold_change, pvalue, fdr, statistic.

        ``genes`` names the columns (default: their positions); groups in order, genes within.
        """
        n_groups, n_genes = self.pvalue.shape
        names = np.arange(n_genes) if genes is None else np.asarray(genes)
        if names.shape != (n_genes,):
            raise ValueError(f"'genes' must have {n_genes} names (got shape {names.shape}).")
        return pd.DataFrame(
            {
                "group": np.repeat(self.groups, n_genes),
                "gene": np.tile(names, n_groups),
                "log2_fold_change": self.log2_fold_change.ravel(),
                "pvalue": self.pvalue.ravel(),
                "fdr": self.fdr.ravel(),
                "statistic": self.statistic.ravel(),
            }
        )

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
    k = min(k, s.shape[1])
    out = np.empty((s.shape[0], k), dtype=np.int64)
    for i in range(s.shape[0]):
        out[i] = smallest_first(-s[i], k)
    return out


def smallest_first(key: NDArray[np.float64], k: int) -> NDArray[np.intp]:
    """``np.argsort(key, kind="stable")[:k]`` (``key`` finite, 1-D) without sorting it all.

    The ``k``-th smallest value is found by partition; every index below it and the first (by
    index) of those equal to it are then sorted stably: the same indices in the same order.
    """
    if k >= key.size:
        return np.argsort(key, kind="stable")[:k]
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    kth = np.partition(key, k - 1)[k - 1]
    below = np.flatnonzero(key < kth)
    chosen = np.union1d(below, np.flatnonzero(key == kth)[: k - below.size])
    return chosen[np.argsort(key[chosen], kind="stable")]


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
    csr = prep.csr
    n_g = prep.n_cells.astype(np.float64)
    code_start = np.searchsorted(prep.code[prep.rows], np.arange(len(prep.groups) + 2))
    u_stat, tie_term, sums = _rank_sum(csr, prep.rows, code_start.astype(np.int64))
    pvalue = _mwu_pvalue(u_stat, n_g[:, None], float(prep.n_control), tie_term)
    means, ctrl_mean = _means_from_sums(sums, prep)
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


# --- internals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    csr: sp.csr_matrix  # cells x genes, canonical (sorted indices, no duplicates), float32/64
    code: NDArray[np.int64]  # per cell: 0..P-1 for groups, P for control
    rows: NDArray[np.int64]  # cells ordered by code (stable): groups in order, control last
    groups: NDArray[np.str_]
    n_cells: NDArray[np.int64]
    n_control: int


def _prepare(X: ArrayLike | sp.spmatrix, labels: ArrayLike, control: str) -> _Prepared:
    lab = np.asarray(labels).astype(str)
    n_obs = np.shape(X)[0]
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
    csr = _as_csr(X)
    if csr.data.size and np.isnan(csr.data).any():
        raise ValueError("X contains NaN; remove or impute them before differential expression")
    return _Prepared(
        csr=csr,
        code=code,
        rows=np.argsort(code, kind="stable").astype(np.int64),
        groups=groups,
        n_cells=counts[:n_groups].astype(np.int64),
        n_control=int(counts[n_groups]),
    )


def _as_csr(X: ArrayLike | sp.spmatrix) -> sp.csr_matrix:
    """X as a canonical CSR matrix of float32 or float64, without copying one that already is."""
    csr = sp.csr_matrix(X) if sp.issparse(X) else sp.csr_matrix(np.asarray(X))
    if csr.dtype not in (np.float32, np.float64):
        csr = csr.astype(np.float64)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()  # also sorts the indices of each row
    return csr


def _gene_block(csr: sp.csr_matrix) -> int:
    """Genes per kernel block: about 2.5 million stored values (10-20 MB of buffers per thread).

    Each block visits every row once, so larger blocks cost fewer row visits.
    """
    n_genes = csr.shape[1]
    per_gene = max(csr.nnz / max(n_genes, 1), 1.0)
    return int(np.clip(2_500_000 / per_gene, 8, max(n_genes, 8)))


def _n_chunks(csr: sp.csr_matrix) -> int:
    """Threads for the rank-sum kernel: numba's thread count (``NUMBA_NUM_THREADS``, by
    default the cores), one when the matrix is small."""
    import numba

    threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    return int(threads) if csr.nnz > 1_000_000 else 1


def _rank_sum(
    csr: sp.csr_matrix, rows: NDArray[np.int64], code_start: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """U, tie term and sums of every (group, gene): gene ranges of equal work on threads."""
    kernels = _kernels()
    n_genes, n_chunks, block = csr.shape[1], _n_chunks(csr), _gene_block(csr)
    gene_nnz, bounds, table_bits = kernels.rank_sum_plan(
        csr.indptr, csr.indices, rows, code_start, n_genes, n_chunks
    )
    n_groups = code_start.shape[0] - 2
    out = (
        np.empty((n_groups, n_genes)),
        np.empty((n_groups, n_genes)),
        np.zeros((n_groups + 1, n_genes)),
    )

    def chunk(c: int) -> None:
        kernels.rank_sum_chunk(
            csr.indptr, csr.indices, csr.data, rows, code_start, gene_nnz,
            bounds[c], bounds[c + 1], block, table_bits, out,
        )  # fmt: skip

    if n_chunks == 1:
        chunk(0)
    else:  # the kernel releases the GIL: chunks run in parallel
        with ThreadPoolExecutor(max_workers=n_chunks) as pool:
            list(pool.map(chunk, range(n_chunks)))
    return out


def _code_sums(
    X: ArrayLike | sp.spmatrix, code: NDArray[np.int64], n_codes: int, *, squared: bool = False
) -> NDArray[np.float64]:
    """Sums over the cells of each code of X (or X**2), in float64: shape ``(n_codes, G)``.

    Cells with a negative code are left out. The values of each (code, gene) are added in the
    order of the cells, as :func:`rank_sum_test` adds them, so both tests report identical fold
    changes.
    """
    csr = _as_csr(X)
    code = np.asarray(code, dtype=np.int64)
    rows = np.argsort(code, kind="stable").astype(np.int64)
    rows = rows[code[rows] >= 0]
    starts = np.searchsorted(code[rows], np.arange(n_codes + 1)).astype(np.int64)
    return _kernels().code_sums(
        csr.indptr, csr.indices, csr.data, rows, starts, csr.shape[1], squared
    )


def _group_sums(prep: _Prepared, *, squared: bool = False) -> NDArray[np.float64]:
    """Sums over cells of X (or X**2) per group, control last: shape ``(P + 1, G)``, float64."""
    return _code_sums(prep.csr, prep.code, len(prep.groups) + 1, squared=squared)


def _means_from_sums(
    sums: NDArray[np.float64], prep: _Prepared
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split ``(P + 1, G)`` sums into group means ``(P, G)`` and control means ``(G,)``."""
    counts = np.append(prep.n_cells, prep.n_control).astype(np.float64)
    means = sums / counts[:, None]
    return means[:-1], means[-1]


def _mwu_pvalue(
    u1: NDArray[np.float64], n1: NDArray[np.float64], n2: float, tie_term: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Two-sided asymptotic p-value with continuity correction, as scipy's ``_get_mwu_z``.

    ``max(U1, U2) - mu`` is written ``|U1 - mu|`` (exact: U and mu are multiples of 1/2), and
    the arithmetic is done in place on one array.
    """
    mu = n1 * n2 / 2.0
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = tie_term / (n * (n - 1.0))
        np.subtract(n + 1.0, s, out=s)
        s *= n1 * n2 / 12.0
        np.sqrt(s, out=s)
        z = np.abs(u1 - mu)
        z -= 0.5
        z /= s
    np.negative(z, out=z)
    p = special.ndtr(z, out=z)
    p *= 2.0
    # All values tied: s = 0 and z = -inf gives p = 2 before clipping, i.e. p = 1.
    np.nan_to_num(p, copy=False, nan=1.0)
    return np.clip(p, 0.0, 1.0, out=p)


def warm_kernels(dtype: np.dtype[Any]) -> threading.Thread:
    """Compile (or load from numba's on-disk cache) the DE kernels for CSR matrices of
    ``dtype`` values and int32 indices, on a thread started now and returned.

    :func:`celltwin.eval.evaluate_files` starts it before reading the files: on a first call
    numba's compilation (seconds) then overlaps the reading instead of following it. A kernel
    called meanwhile waits for the compilation (numba's lock) and does not compile twice.
    """

    def compile_now() -> None:
        data = np.array([1.0, 2.0, 3.0], dtype=dtype)
        tiny = sp.csr_matrix(
            (data, np.array([0, 1, 0], np.int32), np.array([0, 1, 2, 3, 3], np.int32)),
            shape=(4, 2),
        )
        rank_sum_test(tiny, np.array(["a", "a", "c", "c"]), control="c")
        _code_sums(tiny, np.array([0, 0, 1, 1]), 2)

    thread = threading.Thread(target=compile_now, name="celltwin-kernels", daemon=True)
    thread.start()
    return thread


def _kernels() -> ModuleType:
    """The compiled kernels (numba is imported on first use, not with :mod:`celltwin.eval`)."""
    from . import _de_kernels

    return _de_kernels
