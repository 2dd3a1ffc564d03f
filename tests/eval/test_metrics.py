"""Metric functions against reference computations, hand-computed values and invariants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from sklearn.metrics import roc_auc_score

import celltwin.eval as m
from celltwin._keys import CONTROL


@pytest.fixture
def profiles() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(6, 40))
    pred = true + rng.normal(scale=0.5, size=true.shape)
    return pred, true


def test_mae_mse_match_numpy(profiles) -> None:
    pred, true = profiles
    np.testing.assert_allclose(m.mae(pred, true), np.mean(np.abs(pred - true), axis=1))
    np.testing.assert_allclose(m.mse(pred, true), np.mean((pred - true) ** 2, axis=1))
    assert np.all(m.mae(true, true) == 0)
    with pytest.raises(ValueError, match="same shape"):
        m.mae(pred, true[:, :3])


def test_pearson_delta_matches_scipy(profiles) -> None:
    pred, true = profiles
    expected = [st.pearsonr(a, b)[0] for a, b in zip(pred, true, strict=True)]
    np.testing.assert_allclose(m.pearson_delta(pred, true), expected, rtol=1e-12)
    constant = pred.copy()
    constant[0] = 1.0
    assert np.isnan(m.pearson_delta(constant, true)[0])


def test_pds_hand_example() -> None:
    true = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    # Row 0 predicted right on; row 1 nearest to row 0's truth; row 2 farther from its own truth
    # (L1 = 2) than from rows 0 (1) and 1 (2, tie broken by order: row 1 comes first).
    pred = np.array([[0.0, 0.0], [0.2, 0.0], [0.0, 1.0]])
    # Distances for row 1: to 0 -> 0.2, to 1 -> 0.8, to 2 -> 3.2: rank 1.
    # Row 2: to 0 -> 1, to 1 -> 2, to 2 -> 2 (tie with an earlier row): rank 2.
    np.testing.assert_allclose(m.pds(pred, true), [1.0, 1 - 1 / 3, 1 - 2 / 3])
    np.testing.assert_allclose(m.pds(true, true), [1.0, 1.0, 1.0])


def test_pds_excludes_target_genes() -> None:
    # Perturbation A knocks down gene 0 (its target); B's target is not measured. The prediction
    # for A gets only the knock-down right and otherwise looks like B.
    true = np.array([[-5.0, 0.2], [0.0, 0.1]])
    pred = np.array([[-5.0, 0.1], [0.0, 0.1]])
    mask = np.array([[True, False], [False, False]])
    assert m.pds(pred, true).tolist() == [1.0, 1.0]
    # Without the target, A's prediction is nearer B's truth (0) than its own (0.1): rank 1 of 2.
    np.testing.assert_allclose(m.pds(pred, true, target_mask=mask), [0.5, 1.0])
    # Matches recomputing the distances on the kept genes only.
    rng = np.random.default_rng(1)
    t, p = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    mask = np.zeros((5, 12), dtype=bool)
    mask[np.arange(5), np.arange(5)] = True
    expected = []
    for i in range(5):
        keep = ~mask[i]
        d = np.abs(t[:, keep] - p[i, keep]).sum(axis=1)
        expected.append(1 - np.flatnonzero(np.argsort(d, kind="stable") == i)[0] / 5)
    np.testing.assert_allclose(m.pds(p, t, target_mask=mask), expected)


def test_pds_shuffled_is_worse(profiles) -> None:
    pred, true = profiles
    assert m.pds(pred, true).mean() > m.pds(np.roll(pred, 1, axis=0), true).mean()


def test_des_hand_example() -> None:
    # 6 genes. Truth: genes 0, 1, 2 significant (N = 3).
    true_fdr = np.array([[0.01, 0.01, 0.04, 0.5, 0.5, 0.5]])
    true_lfc = np.array([[2.0, -1.0, 0.5, 0.1, 0.1, 0.1]])
    # Prediction: significant 0, 3, 4, 1; by |lfc|: 3 (5.0), 0 (-3.0), 4 (2.0), 1 (1.0).
    pred_fdr = np.array([[0.001, 0.02, 0.9, 0.001, 0.001, 0.9]])
    pred_lfc = np.array([[-3.0, 1.0, 9.0, 5.0, 2.0, 9.0]])
    # Top N = 3 predicted: {3, 0, 4}; overlap with {0, 1, 2} is 1 gene -> 1/3.
    out = m.des(pred_lfc, true_lfc, pred_fdr=pred_fdr, true_fdr=true_fdr)
    np.testing.assert_allclose(out, [1 / 3])
    # Fewer predicted significant genes than N: overlap over N still.
    few = np.array([[0.01, 0.9, 0.9, 0.9, 0.9, 0.9]])
    np.testing.assert_allclose(m.des(pred_lfc, true_lfc, pred_fdr=few, true_fdr=true_fdr), [1 / 3])
    # Identical DE -> 1; no truly significant gene -> 0 (cell-eval's convention).
    assert m.des(true_lfc, true_lfc, pred_fdr=true_fdr, true_fdr=true_fdr)[0] == 1.0
    none = np.full((1, 6), 0.9)
    assert m.des(pred_lfc, true_lfc, pred_fdr=pred_fdr, true_fdr=none)[0] == 0.0


def test_des_threshold_compared_in_float32() -> None:
    lfc = np.array([[1.0, 2.0]])
    fdr = np.array([[0.0499999999, 0.01]])  # rounds to 0.05 in float32: not significant
    # Truth: only gene 1 significant; prediction ranks gene 0 first if it counted as significant.
    pred_lfc = np.array([[5.0, 1.0]])
    out = m.des(pred_lfc, lfc, pred_fdr=fdr, true_fdr=fdr)
    assert out[0] == 1.0


def test_n_sig_spearman() -> None:
    true_fdr = np.array([[0.01, 0.01, 0.5], [0.01, 0.5, 0.5], [0.01, 0.01, 0.01]])
    pred_fdr = np.array([[0.01, 0.5, 0.5], [0.5, 0.5, 0.5], [0.01, 0.01, 0.5]])
    # Counts 2, 1, 3 vs 1, 0, 2: same order.
    assert float(m.n_sig_spearman(pred_fdr, true_fdr)) == pytest.approx(1.0)
    assert m.n_sig_spearman(pred_fdr, true_fdr).shape == ()


def test_gears_top_de_metrics(profiles) -> None:
    pred, true = profiles
    ctrl = np.linspace(-1, 1, true.shape[1])
    top = np.array([np.argsort(-np.abs(row))[:20] for row in true - ctrl])
    out = m.pearson_delta_top_de(pred, true, true_control=ctrl, top_de=top)
    for i in range(len(true)):
        idx = top[i]
        assert out[i] == pytest.approx(
            st.pearsonr(pred[i, idx] - ctrl[idx], true[i, idx] - ctrl[idx])[0]
        )
    mse = m.mse_top_de(pred, true, top_de=top)
    np.testing.assert_allclose(
        mse, [np.mean((pred[i, top[i]] - true[i, top[i]]) ** 2) for i in range(6)]
    )


def test_systema_pearson_delta(profiles) -> None:
    pred, true = profiles
    ref = true.mean(axis=0)
    out = m.systema_pearson_delta(pred, true, reference=ref)
    np.testing.assert_allclose(
        out, [st.pearsonr(p - ref, t - ref)[0] for p, t in zip(pred, true, strict=True)]
    )
    # Predicting the reference itself (the shared shift) is uninformative: NaN (constant delta).
    assert np.all(np.isnan(m.systema_pearson_delta(np.tile(ref, (6, 1)), true, reference=ref)))


def test_centroid_accuracy_systema_example() -> None:
    truth = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    perfect = truth.copy()
    tie = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert m.centroid_accuracy(perfect, truth).tolist() == [1.0, 1.0, 1.0]
    assert m.centroid_accuracy(tie, truth).tolist() == [0.5, 0.5, 0.5]
    assert np.isnan(m.centroid_accuracy(truth[:1], truth[:1])[0])


def test_energy_distance_and_mmd() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 3))
    b = rng.normal(size=(50, 3))
    far = b + 3.0
    d = m.energy_distance([a, a, a], [a, b, far])
    assert d[0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < d[1] < d[2]

    # Reference: the same V-statistic written out with explicit loops over pairs.
    def mean_dist(x, y):
        return np.mean([[np.linalg.norm(p - q) for q in y] for p in x])

    expected = 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
    assert d[1] == pytest.approx(expected, rel=1e-10)
    k = m.mmd([a, a, a], [a, b, far])
    assert k[0] == pytest.approx(0.0, abs=1e-12)
    assert 0 <= k[1] < k[2]
    # Hand value for one point each: sigma falls back to 1 (a single true cell), distance 1.
    single = m.mmd([np.zeros((1, 1))], [np.ones((1, 1))], scales=(1.0,))
    assert single[0] == pytest.approx(2 - 2 * np.exp(-0.5))


def test_fit_pca_projects_onto_leading_axis() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1)) * np.array([[3.0, 0.0, 0.0]]) + rng.normal(
        scale=0.1, size=(200, 3)
    )
    basis = m.fit_pca(x, n_components=2)
    assert basis.components.shape == (2, 3)
    assert abs(basis.components[0, 0]) > 0.99
    z = basis.transform(x)
    assert z.shape == (200, 2) and z[:, 0].var() > 100 * z[:, 1].var()


def test_spearman_matches_scipy(profiles) -> None:
    pred, true = profiles
    expected = [st.spearmanr(p, t)[0] for p, t in zip(pred, true, strict=True)]
    np.testing.assert_allclose(m.spearman(pred, true), expected, rtol=1e-12)
    # Genes outside a signature (NaN truth) are left out.
    t = true.copy()
    t[:, :10] = np.nan
    expected = [st.spearmanr(p[10:], q[10:])[0] for p, q in zip(pred, t, strict=True)]
    np.testing.assert_allclose(m.spearman(pred, t), expected, rtol=1e-12)


def test_topk_overlap() -> None:
    true = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    pred = np.array([[5.0, 0.0, 3.0, 2.0, 1.0, 4.0]])
    # Top 2 up: truth {0, 1}, pred {0, 5} -> 1/2. Top 2 down: truth {5, 4}, pred {1, 4} -> 1/2.
    assert m.topk_overlap(pred, true, k=2)[0] == 0.5
    assert m.topk_overlap(pred, true, k=2, direction="down")[0] == 0.5
    assert m.topk_overlap(true, true, k=3)[0] == 1.0
    with pytest.raises(ValueError, match="'direction'"):
        m.topk_overlap(pred, true, k=2, direction="sideways")


def test_topk_auroc_matches_sklearn(profiles) -> None:
    pred, true = profiles
    for direction in ("up", "down"):
        out = m.topk_auroc(pred, true, k=8, direction=direction)
        for i in range(len(true)):
            order = np.argsort(-true[i] if direction == "up" else true[i], kind="stable")
            labels = np.zeros(true.shape[1], dtype=bool)
            labels[order[:8]] = True
            score = pred[i] if direction == "up" else -pred[i]
            assert out[i] == pytest.approx(roc_auc_score(labels, score))
    assert np.all(m.topk_auroc(true, true, k=8) == 1.0)


def test_mean_of_centroids_weights_groups_equally() -> None:
    X = np.array([[0.0], [0.0], [0.0], [6.0], [3.0]])
    labels = np.array(["a", "a", "a", "b", CONTROL])
    # Centroids: a = 0, b = 6, control = 3.
    assert m.mean_of_centroids(X, labels)[0] == pytest.approx(3.0)
    assert m.mean_of_centroids(X, labels, exclude=(CONTROL,))[0] == pytest.approx(3.0)
    assert m.mean_of_centroids(X[:4], labels[:4])[0] == pytest.approx(3.0)
    assert m.mean_of_centroids(X, np.array(["a", "a", "a", "a", CONTROL]), exclude=(CONTROL,))[
        0
    ] == pytest.approx(1.5)


def test_baseline_scaling_and_vcc_score() -> None:
    assert m.baseline_scaled(0.1, 0.2, best=0) == pytest.approx(0.5)
    assert m.baseline_scaled(0.3, 0.2, best=0) == 0.0  # worse than the baseline: clipped
    assert m.baseline_scaled(0.6, 0.2, best=1) == pytest.approx(0.5)
    assert m.baseline_scaled(np.nan, 0.2, best=1) == 0.0
    score = m.vcc_score(
        mae=0.1, des=0.6, pds=0.9, baseline_mae=0.2, baseline_des=0.2, baseline_pds=0.5
    )
    assert score == pytest.approx((0.5 + 0.5 + 0.8) / 3)
    with pytest.raises(ValueError, match="'best'"):
        m.baseline_scaled(1.0, 0.5, best=0.5)


def test_r2_metrics_match_scipy() -> None:
    from scipy.stats import linregress

    rng = np.random.default_rng(0)
    true = rng.gamma(2.0, 1.0, size=(3, 300))
    pred = true + rng.normal(0, 0.5 + np.arange(3)[:, None], size=true.shape)
    expected = [linregress(pred[i], true[i]).rvalue ** 2 for i in range(3)]
    np.testing.assert_allclose(m.r2_mean(pred, true), expected)

    cells = rng.poisson(1.0, size=(120, 300)).astype(float)
    labels = np.array([CONTROL] * 60 + ["a"] * 30 + ["b"] * 30)
    cells[labels == "a", :40] += 3  # genes 0..39 up in a
    de = m.rank_sum_test(np.log1p(cells), labels).select(["a", "b"])
    got = m.r2_mean_top_de(pred[:2], true[:2], true_de=de, k=100)
    score = np.sign(de.log2_fold_change) * -np.log10(np.maximum(de.pvalue, 1e-300))
    for i in range(2):
        top = np.argsort(-score[i], kind="stable")[:100]
        assert got[i] == pytest.approx(linregress(pred[i, top], true[i, top]).rvalue ** 2)
    # The truly up genes of "a" are its top DE genes.
    assert set(np.argsort(-score[0], kind="stable")[:40]) == set(range(40))


def test_interaction_pearson_is_the_partial_correlation_given_the_additive_sum() -> None:
    rng = np.random.default_rng(1)
    additive = rng.normal(size=(3, 200))
    truth = rng.normal(scale=0.2, size=(3, 200))
    pred = truth + rng.normal(scale=0.2, size=truth.shape)
    got = m.interaction_pearson(pred, truth, additive=additive)
    for i in range(3):
        # Partial r: both residuals of their least-squares fit on [1, additive], correlated.
        design = np.column_stack([np.ones(200), additive[i]])
        rx = pred[i] - design @ np.linalg.lstsq(design, pred[i], rcond=None)[0]
        ry = truth[i] - design @ np.linalg.lstsq(design, truth[i], rcond=None)[0]
        assert got[i] == pytest.approx(st.pearsonr(rx, ry)[0], rel=1e-12)
    # No interaction beyond a multiple of the sum of the parts scores 0, not a correlation.
    shrunk = -0.5 * additive + 0.1
    np.testing.assert_array_equal(m.interaction_pearson(shrunk, truth, additive=additive), 0.0)
    # One combination as vectors.
    one = m.interaction_pearson(pred[0], truth[0], additive=additive[0])
    assert one.shape == (1,) and one[0] == got[0]
    with pytest.raises(ValueError, match="same shape"):
        m.interaction_pearson(pred, truth[:, :3], additive=additive)


def test_interval_coverage_counts_genes_inside_the_bounds_ends_included() -> None:
    from celltwin.eval import interval_coverage

    true = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    lower = np.array([[0.0, 0.0, 2.5, 0.0], [4.0, 4.0, 4.0, 6.0]])
    upper = np.array([[0.0, 2.0, 3.0, 2.0], [5.0, 6.0, 4.5, 7.0]])
    np.testing.assert_array_equal(interval_coverage(true, lower=lower, upper=upper), [0.5, 0.5])
    assert interval_coverage(true[0], lower=lower[0], upper=upper[0]).shape == (1,)
    with pytest.raises(ValueError, match="same shape"):
        interval_coverage(true, lower=lower[:, :3], upper=upper)
