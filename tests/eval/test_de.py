"""DE engine: agreement with scipy (Mann-Whitney U, Welch t, BH) and pdex's fold change."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as st

from celltwin._keys import CONTROL
from celltwin.eval import _de
from celltwin.eval._de import (
    _code_sums,
    _mwu_pvalue,
    benjamini_hochberg,
    log2_fold_change,
    rank_sum_test,
    top_de_genes,
)
from celltwin.eval._de_welch import welch_t_test


def _tricky_matrix(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Heavy ties, many zeros, negatives, constant genes, a one-cell group."""
    rng = np.random.default_rng(seed)
    n, g = 160, 24
    X = rng.poisson(0.6, (n, g)).astype(np.float64)  # integers: ties everywhere, ~55% zeros
    X[:, 0] = np.round(rng.normal(size=n), 1)  # negatives, zeros and ties
    X[:, 1] = 0.0  # all zero
    X[:, 2] = 3.0  # constant non-zero
    X[:, 3:6] = np.log1p(rng.poisson(2.0, (n, 3)) * rng.uniform(0.5, 2, (n, 1)))  # continuous
    X[:, 6] = np.where(rng.random(n) < 0.9, 0.0, 1.0)  # nearly all zero
    labels = rng.choice([CONTROL, "A", "B", "C"], n, p=[0.5, 0.25, 0.2, 0.05])
    labels[-1] = "single"
    return X, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "float32"])
def test_rank_sum_matches_scipy(seed: int, fmt: str) -> None:
    X, labels = _tricky_matrix(seed)
    data = {
        "dense": X,
        "csr": sp.csr_matrix(X),
        "csc": sp.csc_matrix(X),
        "float32": sp.csr_matrix(X.astype(np.float32)),
    }[fmt]
    reference = X.astype(np.float32).astype(np.float64) if fmt == "float32" else X
    res = rank_sum_test(data, labels)
    assert res.groups.tolist() == sorted(set(labels) - {CONTROL})
    ctrl = reference[labels == CONTROL]
    for i, g in enumerate(res.groups):
        grp = reference[labels == g]
        ref = st.mannwhitneyu(grp, ctrl, method="asymptotic", use_continuity=True, axis=0)
        np.testing.assert_array_equal(res.statistic[i], ref.statistic)
        # scipy gives NaN when every value is tied; that is p = 1 (no evidence), as in pdex.
        np.testing.assert_allclose(res.pvalue[i], np.nan_to_num(ref.pvalue, nan=1.0), atol=1e-8)
        np.testing.assert_allclose(res.fdr[i], st.false_discovery_control(res.pvalue[i]))
    assert res.n_cells.tolist() == [int((labels == g).sum()) for g in res.groups]
    assert res.n_control == int((labels == CONTROL).sum())


def test_rank_sum_explicit_zeros_are_zeros() -> None:
    X, labels = _tricky_matrix(3)
    stored = sp.csr_matrix(X)
    # Store explicit zeros in a copy: they must tie with the implicit zeros.
    coo = stored.tocoo()
    extra_r, extra_c = np.nonzero(X == 0)
    with_zeros = sp.csr_matrix(
        (
            np.concatenate([coo.data, np.zeros(extra_r.size)]),
            (np.concatenate([coo.row, extra_r]), np.concatenate([coo.col, extra_c])),
        ),
        shape=X.shape,
    )
    assert with_zeros.nnz > stored.nnz
    a, b = rank_sum_test(stored, labels), rank_sum_test(with_zeros, labels)
    np.testing.assert_array_equal(a.pvalue, b.pvalue)
    np.testing.assert_array_equal(a.statistic, b.statistic)


def test_rank_sum_detects_a_shift() -> None:
    rng = np.random.default_rng(0)
    ctrl = rng.normal(size=(200, 3))
    grp = rng.normal(size=(50, 3)) + np.array([0.0, 1.0, -1.0])
    res = rank_sum_test(np.vstack([ctrl, grp]), [CONTROL] * 200 + ["up"] * 50)
    assert res.pvalue[0, 0] > 0.01
    assert res.pvalue[0, 1] < 1e-6 and res.pvalue[0, 2] < 1e-6
    # U of the group is large when it is shifted up, small when down.
    assert res.statistic[0, 1] > 200 * 50 / 2 > res.statistic[0, 2]


def test_welch_matches_scipy() -> None:
    X, labels = _tricky_matrix(4)
    res = welch_t_test(sp.csr_matrix(X), labels)
    ctrl = X[labels == CONTROL]
    for i, g in enumerate(res.groups):
        grp = X[labels == g]
        if grp.shape[0] < 2:
            # One cell: variance undefined, reported as t = 0, p = 1.
            assert np.all(res.statistic[i] == 0) and np.all(res.pvalue[i] == 1)
            continue
        # scipy warns about the constant genes, which are compared separately below.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = st.ttest_ind(grp, ctrl, equal_var=False, axis=0)
        defined = np.isfinite(ref.statistic)
        np.testing.assert_allclose(res.statistic[i, defined], ref.statistic[defined], rtol=1e-9)
        np.testing.assert_allclose(res.pvalue[i, defined], ref.pvalue[defined], atol=1e-10)
        # Constant genes (zero variance on both sides): t = 0, p = 1 like scanpy.
        assert np.all(res.statistic[i, ~defined] == 0) and np.all(res.pvalue[i, ~defined] == 1)


def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((4, 300)) ** 3
    p[0, :10] = p[0, 0]  # ties
    np.testing.assert_allclose(benjamini_hochberg(p), st.false_discovery_control(p, axis=1))
    np.testing.assert_allclose(
        benjamini_hochberg(p.T, axis=0), st.false_discovery_control(p.T, axis=0)
    )
    # Hand example: sorted p (0.01, 0.03, 0.04, 0.2) * 4 / rank = (0.04, 0.06, 0.0533, 0.2),
    # then the running minimum from the largest: (0.04, 0.0533, 0.0533, 0.2).
    np.testing.assert_allclose(
        benjamini_hochberg([0.01, 0.04, 0.03, 0.2]), [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )


def test_log2_fold_change_pdex_definition() -> None:
    g = np.array([np.log1p(3.0), 0.0, np.log1p(1.0), 0.0])
    c = np.array([np.log1p(1.0), 0.0, 0.0, np.log1p(2.0)])
    lfc = log2_fold_change(g, c)
    assert lfc[0] == pytest.approx(np.log2(3.0))  # expm1 of the log means: 3 vs 1
    assert lfc[1] == 0.0  # zero in both: no change
    assert lfc[2] == np.inf and lfc[3] == -np.inf  # one-sided zero


def test_rank_sum_reports_pdex_fold_change() -> None:
    X, labels = _tricky_matrix(5)
    X = np.abs(X)
    res = rank_sum_test(X, labels)
    ctrl_mean = X[labels == CONTROL].mean(axis=0)
    for i, g in enumerate(res.groups):
        expected = log2_fold_change(X[labels == g].mean(axis=0), ctrl_mean)
        np.testing.assert_allclose(res.log2_fold_change[i], expected, rtol=1e-12)
    welch = welch_t_test(X, labels)
    np.testing.assert_array_equal(welch.log2_fold_change, res.log2_fold_change)


def test_top_de_genes_orders_by_absolute_statistic() -> None:
    stat = np.array([[0.5, -3.0, 2.0, np.nan, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    top = top_de_genes(stat, k=3)
    assert top.tolist() == [[1, 4, 2], [0, 1, 2]]  # ties keep gene order
    assert top_de_genes(stat, k=10).shape == (2, 5)


def test_select_and_errors() -> None:
    X, labels = _tricky_matrix(6)
    res = rank_sum_test(X, labels)
    sub = res.select(["C", "A"])
    assert sub.groups.tolist() == ["C", "A"]
    np.testing.assert_array_equal(sub.pvalue[1], res.pvalue[0])
    with pytest.raises(KeyError, match="not in this DEResult"):
        res.select(["nope"])
    with pytest.raises(ValueError, match="control label 'ctrl' not found"):
        rank_sum_test(X, labels, control="ctrl")
    with pytest.raises(ValueError, match="one entry per cell"):
        rank_sum_test(X, labels[:-1])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rank_sum_test(bad, labels)


# --- the compiled rank-sum kernel: every code path against scipy ----------------------------------


def _assert_matches_scipy(res: _de.DEResult, X: np.ndarray, labels: np.ndarray) -> None:
    ctrl = X[labels == CONTROL]
    for i, g in enumerate(res.groups):
        grp = X[labels == g]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = st.mannwhitneyu(grp, ctrl, method="asymptotic", use_continuity=True, axis=0)
        np.testing.assert_array_equal(res.statistic[i], ref.statistic, err_msg=f"U of {g}")
        np.testing.assert_allclose(
            res.pvalue[i], np.nan_to_num(ref.pvalue, nan=1.0), atol=1e-8, rtol=0, err_msg=g
        )
        np.testing.assert_allclose(res.fdr[i], st.false_discovery_control(res.pvalue[i]))


def _random_sparse(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse log-normal data with the cases the kernel treats apart, one gene each."""
    rng = np.random.default_rng(seed)
    n, g = 400, 30
    X = rng.lognormal(0.0, 1.0, (n, g))
    X[rng.random((n, g)) < 0.75] = 0.0
    labels = rng.choice(
        [CONTROL, "g0", "g1", "g2", "g3", "g4"], n, p=[0.4, 0.2, 0.2, 0.1, 0.05, 0.05]
    )
    X[:, 0] = 0.0  # all zero
    X[:, 1] = np.round(rng.normal(size=n), 1)  # negatives below the zero block, many ties
    X[:, 2] = np.where(rng.random(n) < 0.5, 2.0, 0.0)  # one value: a crowded bucket
    # A few dozen copies of one value among spread ones: a bucket of more than 8 values
    # (binary search) next to buckets of 2-8 (linear scan).
    X[:, 3] = np.where(rng.random(n) < 0.3, 1.5, np.round(rng.uniform(0, 3, n), 2))
    # Distinct group values between the same two control values, each repeated: the second
    # value finds its place among the control's taken and is counted in the hash table.
    X[:, 4] = np.where(
        labels == CONTROL, rng.choice([0.0, 1.0, 5.0], n), rng.choice([2.0, 3.0, 4.0], n)
    )
    X[labels == "g0", 5] = 0.0  # a group without stored values in this gene
    X[:, 6] = np.where(labels == CONTROL, 0.0, X[:, 6])  # control all zero, groups not
    X[:, 7] = -X[:, 7]  # all negative
    X[:, 8] = np.where(labels == CONTROL, X[:, 8], 0.0)  # groups all zero, control not
    X[:, 9] = rng.choice([0.0, 1.0, 2.0, 3.0], n)  # counts-like: ties everywhere
    X[:, 10] = rng.choice([0.0, 1.0, np.inf, -np.inf], n)  # infinite values rank at the ends
    # Outliers stretch the grid: most values share one bucket (sorted, then binary-searched).
    X[:, 11] = np.where(rng.random(n) < 0.02, 1e4, rng.uniform(0, 1, n))
    X[:, 12] = np.where(rng.random(n) < 0.5, rng.choice([1e-9, 2e-9, 3e-9], n), 0.0)  # tiny values
    return X, labels


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_sum_kernel_cases_match_scipy(seed: int) -> None:
    X, labels = _random_sparse(seed)
    _assert_matches_scipy(rank_sum_test(sp.csr_matrix(X), labels), X, labels)


def test_rank_sum_same_result_for_any_chunks_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    X, labels = _random_sparse(2)
    whole = rank_sum_test(sp.csr_matrix(X), labels)
    for chunks, block in [(3, 2), (2, 7), (5, 1)]:
        # More threads' worth of gene ranges than genes with data, and tiny blocks: the row
        # cursors must carry over from block to block.
        monkeypatch.setattr(_de, "_n_chunks", lambda csr, c=chunks: c)
        monkeypatch.setattr(_de, "_gene_block", lambda csr, b=block: b)
        parts = rank_sum_test(sp.csr_matrix(X), labels)
        np.testing.assert_array_equal(parts.statistic, whole.statistic)
        np.testing.assert_array_equal(parts.pvalue, whole.pvalue)
        np.testing.assert_array_equal(parts.log2_fold_change, whole.log2_fold_change)


def test_rank_sum_unsorted_rows_and_order_of_cells() -> None:
    X, labels = _random_sparse(3)
    # Unsorted column indices and duplicated entries (summed) in the CSR input; cells shuffled.
    coo = sp.coo_matrix(X)
    half = coo.data / 2.0
    messy = sp.csr_matrix(
        (
            np.concatenate([half, half])[::-1],
            (np.tile(coo.row, 2)[::-1], np.tile(coo.col, 2)[::-1]),
        ),
        shape=X.shape,
    )
    messy.has_canonical_format = False
    res = rank_sum_test(messy, labels)
    _assert_matches_scipy(res, messy.toarray(), labels)
    perm = np.random.default_rng(0).permutation(X.shape[0])
    shuffled = rank_sum_test(sp.csr_matrix(X[perm]), labels[perm])
    np.testing.assert_array_equal(shuffled.statistic, rank_sum_test(X, labels).statistic)


def test_rank_sum_large_random_sparse_float32() -> None:
    """Many groups of continuous float32 values, as in a VCC file (dozens of values per gene)."""
    rng = np.random.default_rng(7)
    n_groups, cells, n_ctrl, g = 12, 40, 150, 60
    labels = np.concatenate(
        [np.repeat([f"p{i:02d}" for i in range(n_groups)], cells), [CONTROL] * n_ctrl]
    )
    X = np.log1p(
        rng.poisson(rng.gamma(2.0, 0.5, (labels.size, g))) * rng.lognormal(0, 0.3, (labels.size, 1))
    )
    X = X.astype(np.float32)
    res = rank_sum_test(sp.csr_matrix(X), labels)
    _assert_matches_scipy(res, X.astype(np.float64), labels)


def test_mwu_pvalue_all_tied_and_extremes() -> None:
    u = np.array([[50.0, 0.0, 100.0, 50.0]])
    tie = np.array([[0.0, 0.0, 0.0, 20.0**3 - 20.0]])  # last: all 20 values tied
    p = _mwu_pvalue(u, np.array([[10.0]]), 10.0, tie)
    assert p[0, 3] == 1.0  # no variance: no evidence
    assert p[0, 0] == 1.0  # U at its mean: the continuity correction makes z < 0, p = 1
    x, y = np.arange(10.0), np.arange(10.0) + 100.0
    ref = st.mannwhitneyu(x, y, method="asymptotic", use_continuity=True).pvalue
    assert p[0, 1] == pytest.approx(ref, rel=1e-12)
    assert p[0, 2] == pytest.approx(ref, rel=1e-12)  # two-sided: symmetric


def test_code_sums_match_dense_sums() -> None:
    X, labels = _random_sparse(4)
    X[~np.isfinite(X)] = 0.0  # inf - inf would make NaN sums
    code = np.array([{"g0": 0, "g1": 1, CONTROL: 2}.get(lab, -1) for lab in labels])
    for squared in (False, True):
        sums = _code_sums(sp.csr_matrix(X), code, 3, squared=squared)
        values = X**2 if squared else X
        expected = np.stack([values[code == c].sum(axis=0) for c in range(3)])
        np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-12)
