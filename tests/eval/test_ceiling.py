"""Split-half noise ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from celltwin._keys import CONTROL
from celltwin.eval import (
    build_inputs,
    compute_metrics,
    spearman_brown,
    split_half_ceiling,
    split_halves,
)


def test_split_halves_are_disjoint_and_balanced() -> None:
    labels = np.array(["a"] * 5 + ["b"] * 4 + ["c"] + [CONTROL] * 6)
    splits = split_halves(labels, n_repeats=3, seed=0)
    assert len(splits) == 3
    for a, b in splits:
        assert np.intersect1d(a, b).size == 0
        for lab, half in (("a", 2), ("b", 2), (CONTROL, 3), ("c", 0)):
            assert (labels[a] == lab).sum() == half and (labels[b] == lab).sum() == half
    assert not np.array_equal(splits[0][0], splits[1][0])
    again = split_halves(labels, n_repeats=3, seed=0)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(splits, again, strict=True))
    with pytest.raises(ValueError, match="'n_repeats'"):
        split_halves(labels, n_repeats=0)


def test_ceiling_beats_a_shuffled_model(sim) -> None:
    metrics = ["pearson_delta", "mae", "pds", "des"]
    ceiling = split_half_ceiling(
        sim.true_X, sim.true_labels, genes=sim.genes, metrics=metrics, n_repeats=2, seed=0
    )
    assert set(ceiling.values) == set(metrics)
    assert ceiling.values["mae"].shape == (2, len(ceiling.perturbations))
    mean = ceiling.mean()
    assert np.all(np.isfinite(mean["pearson_delta"]))
    shuffled = compute_metrics(
        build_inputs(
            sim.shuffled_X,
            sim.true_X,
            pred_labels=sim.pred_labels,
            true_labels=sim.true_labels,
            genes=sim.genes,
        ),
        metrics=metrics,
    )
    assert mean["pearson_delta"].mean() > shuffled["pearson_delta"].mean() + 0.3
    assert mean["mae"].mean() < shuffled["mae"].mean()
    assert mean["pds"].mean() > shuffled["pds"].mean()
    # Reproducible with the seed.
    again = split_half_ceiling(
        sim.true_X, sim.true_labels, genes=sim.genes, metrics=["mae"], n_repeats=2, seed=0
    )
    np.testing.assert_array_equal(again.values["mae"], ceiling.values["mae"])


def test_spearman_brown() -> None:
    np.testing.assert_allclose(spearman_brown([0.5, 1.0]), [2 / 3, 1.0])
    assert np.isnan(spearman_brown(-0.2))


def test_plain_lists_are_accepted_as_matrices() -> None:
    """Annotated ArrayLike: a list of rows works as an array does (it used to fail on .shape)."""
    from celltwin.eval import rank_sum_test

    rng = np.random.default_rng(0)
    X = rng.gamma(2.0, 1.0, size=(12, 4)).round(3)
    lab = [CONTROL] * 6 + ["a"] * 6
    genes = list("wxyz")
    de_list, de_array = rank_sum_test(X.tolist(), lab), rank_sum_test(X, lab)
    np.testing.assert_array_equal(de_list.pvalue, de_array.pvalue)
    inputs = build_inputs(X.tolist(), X.tolist(), pred_labels=lab, true_labels=lab, genes=genes)
    np.testing.assert_array_equal(compute_metrics(inputs, metrics=["mae"])["mae"], [0.0])
    a = split_half_ceiling(X.tolist(), lab, genes=genes, metrics=["mae"], n_repeats=2)
    b = split_half_ceiling(X, lab, genes=genes, metrics=["mae"], n_repeats=2)
    np.testing.assert_array_equal(a.values["mae"], b.values["mae"])
