"""The metric registry: metadata consistency, invariants on simulated data, input building."""

from __future__ import annotations

import numpy as np
import pytest

from celltwin._keys import CONTROL
from celltwin.eval import (
    CELL_KINDS,
    INPUT_KINDS,
    METRICS,
    VCC_METRICS,
    MetricInputs,
    build_inputs,
    compute_metrics,
    get_metric,
    list_metrics,
    mean_of_centroids,
    target_gene_mask,
)

ALL_KINDS = ("pseudobulk", "de", "cells", "ranks", "reference")


@pytest.fixture(scope="module")
def scored(sim) -> dict[str, dict[str, np.ndarray]]:
    """All metrics for the truth itself, a good prediction and a shuffled one."""
    reference = mean_of_centroids(sim.train_X, sim.train_labels, exclude=(CONTROL,))
    out = {}
    for name, X, labels in (
        ("identical", sim.true_X, sim.true_labels),
        ("good", sim.good_X, sim.pred_labels),
        ("shuffled", sim.shuffled_X, sim.pred_labels),
    ):
        inputs = build_inputs(
            X,
            sim.true_X,
            pred_labels=labels,
            true_labels=sim.true_labels,
            genes=sim.genes,
            kinds=ALL_KINDS,
            reference=reference,
            max_cells=30,
            n_pcs=10,
        )
        out[name] = compute_metrics(inputs)
    return out


def test_metadata_is_consistent() -> None:
    for name, metric in METRICS.items():
        assert metric.name == name
        assert metric.level in ("perturbation", "aggregate")
        assert set(metric.needs) <= set(INPUT_KINDS), name
        assert metric.description, name
        if metric.best is not None:
            # A bounded metric's best value says which way is better.
            assert metric.higher_is_better == (metric.best == 1.0), name
    assert set(VCC_METRICS) <= set(METRICS)
    assert get_metric("mae").kinds == {"pseudobulk"}
    assert get_metric("des").kinds == {"de"}
    assert get_metric("energy_distance").kinds == {"cells"}


def test_list_metrics_filters() -> None:
    assert "energy_distance" not in list_metrics(kinds={"pseudobulk", "de"})
    assert {"mae", "pds", "des"} <= set(list_metrics(kinds={"pseudobulk", "de"}))
    assert list_metrics(level="aggregate") == ["n_sig_spearman"]
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        get_metric("nope")


def test_every_metric_but_interaction_is_computed_from_cells(scored) -> None:
    assert set(METRICS) - set(list_metrics(kinds=CELL_KINDS)) == {"interaction_pearson"}
    assert set(scored["identical"]) == set(list_metrics(kinds=CELL_KINDS))
    rng = np.random.default_rng(0)
    x, additive = rng.normal(size=(8, 30)), rng.normal(size=(8, 30))
    inputs = MetricInputs(
        perturbations=np.arange(8).astype(str), genes=np.arange(30).astype(str),
        pred_interaction=x, true_interaction=x, additive=additive,
    )  # fmt: skip
    same = compute_metrics(inputs, metrics=["interaction_pearson"])["interaction_pearson"]
    np.testing.assert_allclose(same, get_metric("interaction_pearson").best, atol=1e-12)


def test_identical_prediction_scores_best(scored) -> None:
    values = scored["identical"]
    for name in list_metrics(kinds=CELL_KINDS):
        metric = METRICS[name]
        v = values[name]
        expected_shape = () if metric.level == "aggregate" else (8,)
        assert v.shape == expected_shape, name
        if metric.best is not None:
            np.testing.assert_allclose(v, metric.best, atol=1e-9, err_msg=name)


def test_shuffled_prediction_scores_worse(scored) -> None:
    good, shuffled = scored["good"], scored["shuffled"]
    for name in list_metrics(kinds=CELL_KINDS):
        metric = METRICS[name]
        g, s = np.nanmean(good[name]), np.nanmean(shuffled[name])
        assert (g > s) if metric.higher_is_better else (g < s), (name, g, s)


def test_target_gene_mask_handles_combinations() -> None:
    mask = target_gene_mask(["A", "A+C", "Z", CONTROL], ["A", "B", "C"])
    assert mask.tolist() == [
        [True, False, False],
        [True, False, True],
        [False, False, False],
        [False, False, False],
    ]


def test_metric_inputs_resolution_and_errors(sim) -> None:
    inputs = MetricInputs(
        perturbations=np.array(["a", "b"]),
        genes=np.array(["a", "x"]),
        pred_means=np.array([[1.0, 2.0], [3.0, 4.0]]),
        true_means=np.array([[1.0, 2.0], [3.0, 5.0]]),
        true_control=np.array([1.0, 1.0]),
    )
    # The predicted control defaults to the true one; the target mask to the gene names.
    np.testing.assert_array_equal(inputs.get("pred_delta"), [[0.0, 1.0], [2.0, 3.0]])
    assert inputs.get("target_mask").tolist() == [[True, False], [False, False]]
    np.testing.assert_array_equal(inputs.get("true_scores"), inputs.get("true_delta"))
    with pytest.raises(ValueError, match="'reference' is not set"):
        inputs.get("reference")
    with pytest.raises(ValueError, match="'pred_de' is not set"):
        get_metric("des").compute(inputs)
    with pytest.raises(KeyError, match="unknown metric input"):
        inputs.get("bogus")
    np.testing.assert_allclose(compute_metrics(inputs, metrics=["mae"])["mae"], [0.0, 0.5])


def test_build_inputs_validates(sim) -> None:
    keep = sim.pred_labels != sim.pred_labels[0]
    with pytest.raises(ValueError, match="no cells for 1 perturbations"):
        build_inputs(
            sim.good_X[keep],
            sim.true_X,
            pred_labels=sim.pred_labels[keep],
            true_labels=sim.true_labels,
            genes=sim.genes,
        )
    with pytest.raises(ValueError, match="needs reference="):
        build_inputs(
            sim.good_X,
            sim.true_X,
            pred_labels=sim.pred_labels,
            true_labels=sim.true_labels,
            genes=sim.genes,
            kinds=("reference",),
        )
    with pytest.raises(ValueError, match="unknown input kinds"):
        build_inputs(
            sim.good_X,
            sim.true_X,
            pred_labels=sim.pred_labels,
            true_labels=sim.true_labels,
            genes=sim.genes,
            kinds=("pixels",),
        )
    no_ctrl = sim.pred_labels != CONTROL
    with pytest.raises(ValueError, match="needs its own 'control' cells"):
        build_inputs(
            sim.good_X[no_ctrl],
            sim.true_X,
            pred_labels=sim.pred_labels[no_ctrl],
            true_labels=sim.true_labels,
            genes=sim.genes,
        )


def test_build_inputs_means_match_numpy(sim) -> None:
    inputs = build_inputs(
        sim.good_X,
        sim.true_X,
        pred_labels=sim.pred_labels,
        true_labels=sim.true_labels,
        genes=sim.genes,
        kinds=("pseudobulk",),
    )
    p0 = inputs.perturbations[0]
    np.testing.assert_allclose(
        inputs.pred_means[0], sim.good_X[sim.pred_labels == p0].mean(axis=0), rtol=1e-6
    )
    np.testing.assert_allclose(
        inputs.true_control, sim.true_X[sim.true_labels == CONTROL].mean(axis=0), rtol=1e-6
    )
    assert inputs.true_de is None and inputs.pred_cells is None
