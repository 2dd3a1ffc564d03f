"""The evaluation's shortcuts give exactly what the plain computations they replace give.

Top-k by partition instead of a full stable sort, AUROC's rank sum by one sort instead of
``rankdata``, and Welch's top DE genes without p-values: same indices, same order, same values
(ties and non-finite values included).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from celltwin.eval import top_de_genes, topk_auroc, welch_t_test
from celltwin.eval._de import smallest_first
from celltwin.eval._de_welch import welch_top_de
from celltwin.eval._metrics import _rank_sum


def _tied(rng: np.random.Generator, n: int) -> np.ndarray:
    """Values with many ties (rounded), zeros of both signs and a few infinities."""
    x = np.round(rng.normal(size=n), 1)
    x[rng.random(n) < 0.2] = 0.0
    x[rng.random(n) < 0.05] = -0.0
    x[rng.random(n) < 0.01] = np.inf
    x[rng.random(n) < 0.01] = -np.inf
    return x


def test_smallest_first_equals_a_stable_argsort() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50, 1000):
        key = _tied(rng, n)
        for k in (0, 1, 2, 5, 20, n - 1, n, n + 3):
            want = np.argsort(key, kind="stable")[: max(k, 0)]
            np.testing.assert_array_equal(smallest_first(key, k), want)


def test_rank_sum_equals_rankdata() -> None:
    rng = np.random.default_rng(1)
    for n in (2, 10, 500):
        score = _tied(rng, n)
        chosen = rng.random(n) < 0.3
        assert _rank_sum(score, chosen) == rankdata(score)[chosen].sum()
    score[3] = np.nan
    assert np.isnan(_rank_sum(score, chosen))


def test_topk_auroc_matches_its_definition() -> None:
    rng = np.random.default_rng(2)
    pred, true = _tied(rng, 3 * 400).reshape(3, 400), rng.normal(size=(3, 400))
    pred[np.isinf(pred)] = 0.0
    got = topk_auroc(pred, true, k=20)
    for i in range(3):
        pos = np.zeros(400, dtype=bool)
        pos[np.argsort(-true[i], kind="stable")[:20]] = True
        ranks = rankdata(pred[i])
        want = (ranks[pos].sum() - 20 * 21 / 2) / (20 * 380)
        assert got[i] == want


def test_welch_top_de_equals_the_full_test() -> None:
    rng = np.random.default_rng(3)
    n_genes = 300
    labels = np.repeat(["ctrl", "A", "B", "C", "D"], [40, 12, 1, 9, 15])
    X = rng.poisson(0.4, (labels.size, n_genes)).astype(np.float32)
    X[:, :30] = 0.0  # constant genes: t undefined
    X[labels == "C", 30:40] = 2.0  # constant in one group
    X = sp.csr_matrix(np.log1p(X))
    groups = np.array(["D", "A", "B", "C"])
    for k in (1, 20, n_genes):
        want = top_de_genes(welch_t_test(X, labels, control="ctrl").select(groups).statistic, k=k)
        got = welch_top_de(X, labels, groups, control="ctrl", k=k)
        np.testing.assert_array_equal(got, want)
