"""celltwin.explain.precision_recall: the threshold-free curve of a map's ranked edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltwin.explain import causal_map, correlation_map, precision_recall, score_map
from celltwin.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(
        n_genes=60, n_tfs=6, n_perturbations=4, combinations=0, cells_per_condition=60, seed=2
    )


def _candidates(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every pair of sources A-C x genes g0-g9 with tied p-values, and a random truth."""
    rng = np.random.default_rng(seed)
    pairs = [(s, f"g{i}") for s in "ABC" for i in range(10)]
    frame = pd.DataFrame(pairs, columns=["source", "target"])
    frame["pvalue"] = rng.choice([1e-6, 1e-3, 0.01, 0.2, 0.5, 1.0], size=len(frame))
    truth = frame.sample(n=9, random_state=seed)[["source", "target"]]
    return frame, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_is_sklearns(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    frame, truth = _candidates(seed)
    pr = precision_recall(frame, truth)
    labels = [p in set(zip(truth["source"], truth["target"], strict=True))
              for p in zip(frame["source"], frame["target"], strict=True)]  # fmt: skip
    expected = metrics.average_precision_score(labels, -np.log(frame["pvalue"]))
    assert pr.true == 9 and pr.pairs == 30 and len(pr.curve) == 30
    assert pr.average_precision == pytest.approx(expected, rel=1e-12)


def test_by_hand_ties_broken_by_effect_and_top_k() -> None:
    frame = pd.DataFrame(
        {
            "source": ["A", "A", "A", "A"],
            "target": ["w", "x", "y", "z"],
            "pvalue": [0.01, 0.01, 0.5, 0.001],
            "delta": [0.1, -0.9, 0.3, 0.2],
        }
    )
    truth = pd.DataFrame({"source": ["A", "A"], "target": ["w", "y"]})
    pr = precision_recall(frame, truth)
    assert pr.curve["target"].tolist() == ["z", "x", "w", "y"]  # |delta| breaks the p tie
    np.testing.assert_allclose(pr.curve["precision"], [0, 0, 1 / 3, 1 / 2])
    np.testing.assert_allclose(pr.curve["recall"], [0, 0, 1 / 2, 1])
    assert pr.average_precision == pytest.approx(0.5 * 1 / 3 + 0.5 * 1 / 2)
    top = pr.at(3)
    assert (top["called"], top["true_positives"]) == (3, 1)
    assert top["precision"] == pytest.approx(1 / 3) and top["recall"] == pytest.approx(0.5)
    assert pr.at(10)["called"] == 4  # fewer ranked pairs than k
    with pytest.raises(ValueError, match="k must be"):
        pr.at(-1)
    with pytest.raises(KeyError, match="pvalue"):
        precision_recall(frame.drop(columns="pvalue"), truth)


def test_untested_true_pairs_count_as_missed() -> None:
    frame = pd.DataFrame({"source": ["A"], "target": ["x"], "pvalue": [0.01]})
    truth = pd.DataFrame({"source": ["A", "A"], "target": ["x", "y"]})
    pr = precision_recall(frame, truth)
    assert pr.true == 2 and pr.average_precision == pytest.approx(0.5)
    assert np.isnan(precision_recall(frame, truth.iloc[:0]).average_precision)


def test_causal_map_curve_combines_contexts_and_agrees_with_score_map(sim) -> None:
    cmap, corr = causal_map(sim.adata), correlation_map(sim.adata)
    pr = precision_recall(cmap, sim.grn)
    wide = cmap.tests.pivot_table(index=["source", "target"], columns="context", values="pvalue")
    combined = np.minimum(1.0, 2 * wide.min(axis=1))
    got = pr.curve.set_index(["source", "target"])["pvalue"]
    np.testing.assert_allclose(got.reindex(combined.index), combined, rtol=1e-12)
    assert got.is_monotonic_increasing
    score = score_map(cmap, sim.grn)
    assert (pr.true, pr.pairs) == (score["true"], score["pairs"])
    assert pr.at(pr.pairs)["recall"] == pytest.approx(1.0)  # every pair tested
    # at the causal map's own number of calls, its top pairs are its called edges
    k = int(score["called"])
    assert pr.at(k)["precision"] == pytest.approx(score["precision"], abs=0.05)
    # the ranking of a knockout screen beats correlation's on the true network
    assert pr.average_precision > precision_recall(corr, sim.grn).average_precision
