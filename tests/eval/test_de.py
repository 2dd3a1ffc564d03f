"""DE engine: agreement with scipy (Mann-Whitney U, Welch t, BH) and pdex's fold change."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as st

from celltwin._keys import CONTROL
from celltwin.eval._de import (
    benjamini_hochberg,
    log2_fold_change,
    rank_sum_test,
    top_de_genes,
    welch_t_test,
)


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
