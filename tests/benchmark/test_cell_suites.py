"""The single-cell suites: registration, fold roles, their own metrics and baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT
from celltwin.benchmark import get_suite, make_fold, select_genes, suites
from celltwin.benchmark._suites._papalexi import _ko_chunks
from celltwin.benchmark._suites._simulated import (
    INTERACTION_METRIC,
    interaction_scores,
)
from celltwin.eval import METRICS
from celltwin.models import conditions_of

CELL_SUITES = {
    "kang2018-heldout-celltype",
    "mcfaline2023-heldout-line",
    "mcfaline2023-unseen-knockdown",
    "norman2019-combinations",
    "norman2019-unseen-single",
    "papalexi2021-heldout-ko",
    "sim-combinations",
    "sim-doses",
}


def test_cell_suites_are_registered_with_versions_and_known_metrics() -> None:
    registered = {s.name: s for s in suites() if s.kind == "cells"}
    assert set(registered) == CELL_SUITES
    known = set(METRICS) | {"vcc_score"}
    assert INTERACTION_METRIC in METRICS
    for suite in registered.values():
        assert suite.version and suite.task is not None and suite.smoke == {"smoke": True}
        assert set(suite.metrics) <= known, suite.name
        assert {"smoke", "n_top_genes"} <= set(suite.options)
        assert {"control", "mean"} <= set(suite.models)
    kang = registered["kang2018-heldout-celltype"]
    assert kang.primary_metric == "pearson_delta_top20_de"
    assert {"r2_mean_all", "r2_mean_top100_de", "energy_distance"} <= set(kang.metrics)
    assert kang.options["n_top_genes"] == 2000
    assert registered["papalexi2021-heldout-ko"].primary_metric == "vcc_score"
    assert "nearest_dose" in registered["sim-doses"].models


@pytest.fixture(scope="module")
def held_out_context() -> AnnData:
    from celltwin.simulate import simulate
    from celltwin.split import split_contexts

    adata = simulate(
        n_genes=60,
        n_tfs=6,
        contexts=("A", "B", "C"),
        n_perturbations=3,
        combinations=0,
        cells_per_condition=15,
        seed=2,
    ).adata
    split_contexts(adata, test="B")
    return adata


def test_make_fold_gives_each_role_only_its_cells(held_out_context: AnnData) -> None:
    adata = held_out_context
    fold = make_fold(adata, name="B", n_top_genes=25)
    obs = adata.obs
    is_train = (obs[SPLIT] == "train").to_numpy()
    is_test = (obs[SPLIT] == "test").to_numpy()
    query = (obs[PERTURBATION] == CONTROL).to_numpy() & (obs[CONTEXT] == "B").to_numpy()
    assert list(fold.train.obs_names) == list(obs_names := adata.obs_names[is_train])
    assert len(obs_names) == int(is_train.sum())
    assert list(fold.query.obs_names) == list(adata.obs_names[query])
    assert sorted(fold.truth.obs_names) == sorted(adata.obs_names[is_test | query])
    # Genes come from the training cells only, and every role is cut to them.
    assert fold.genes == select_genes(adata[is_train], n_top_genes=25)
    assert len(fold.genes) == 25
    for part in (fold.train, fold.query, fold.truth):
        assert list(part.var_names) == fold.genes
    x = adata[is_train][:, fold.genes].X
    np.testing.assert_array_equal(
        fold.train.X.toarray() if sp.issparse(fold.train.X) else fold.train.X,
        x.toarray() if sp.issparse(x) else x,
    )
    expected = conditions_of(adata[is_test])
    pd.testing.assert_frame_equal(fold.conditions, expected)
    assert set(fold.conditions[CONTEXT]) == {"B"}


def dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def test_interaction_scores_against_the_simulator_truth() -> None:
    task = get_suite("sim-combinations").task
    opts = task.options({"smoke": True})
    fold = task.fold_data("split0", smoke=True)
    sim = task.truth_extra(opts)
    genes = fold.genes
    control = dense(fold.query.X).mean(axis=0)
    train = fold.train
    labels = train.obs[PERTURBATION].astype(str).to_numpy()

    def trained(single: str) -> np.ndarray:
        return dense(train.X[labels == single]).mean(axis=0) - control

    inter = sim.interactions
    combos = [
        p
        for p in fold.conditions[PERTURBATION]
        if "+" in p and all(s in set(labels) for s in p.split("+"))
    ]
    assert combos  # combo_seen2: both singles in training

    def predict(kind: str) -> AnnData:
        x, obs = [], []
        for combo in combos:
            additive = sum(trained(s) for s in combo.split("+"))
            truth = np.asarray(inter[f"A|{combo}|", genes].X).ravel()
            effect = {
                "exact": additive + truth,  # the training singles plus the true interaction
                "additive": additive,
                "shrunk": 0.5 * additive,  # no interaction beyond a scaled sum of the parts
                "control": np.zeros_like(additive),
            }[kind]
            x.append(control + effect)
            obs.append(("A", combo))
        frame = pd.DataFrame(
            obs, columns=[CONTEXT, PERTURBATION], index=[str(i) for i in range(len(obs))]
        )
        return AnnData(np.array(x), obs=frame, var=pd.DataFrame(index=genes))

    kinds = ("exact", "additive", "shrunk", "control")
    scores = interaction_scores(fold, {k: predict(k) for k in kinds}, sim)
    by = {k: scores[scores["model"] == k]["value"].to_numpy() for k in kinds}
    assert all(len(v) == len(combos) for v in by.values())
    np.testing.assert_allclose(by["exact"], 1.0, atol=1e-9)
    # Nothing beyond the sum of the parts (or a multiple of it) is no interaction: 0, not a score.
    for k in ("additive", "shrunk", "control"):
        np.testing.assert_allclose(by[k], 0.0, atol=1e-9)


def test_papalexi_folds_partition_the_knockouts() -> None:
    task = get_suite("papalexi2021-heldout-ko").task
    try:
        adata = task.data({})
    except (FileNotFoundError, OSError) as err:
        pytest.skip(f"papalexi data not available ({err})")
    chunks = _ko_chunks(adata, task.options({}))
    assert list(chunks) == [f"fold{i}" for i in range(5)]
    held = [p for chunk in chunks.values() for p in chunk]
    assert len(held) == len(set(held)) == 25
    assert set(held) == set(adata.obs[PERTURBATION].astype(str)) - {CONTROL}


def test_papalexi_smoke_fold_scores_vcc_against_the_training_mean() -> None:
    suite = get_suite("papalexi2021-heldout-ko")
    try:
        results = suite.run_fold(
            "fold0", models=["mean", "nearest_perturbation"], seed=0, smoke=True
        )
    except (FileNotFoundError, OSError) as err:
        pytest.skip(f"papalexi data or priors not available ({err})")
    metrics = set(results["metric"])
    assert {"vcc_score", "mae", "des", "pds", "pearson_delta"} <= metrics
    vcc = results[results["metric"] == "vcc_score"].set_index("model")["value"]
    assert set(vcc.index) == {"mean", "nearest_perturbation"}
    assert ((vcc >= 0) & (vcc <= 1)).all()
    # The ceiling rows are there, one per held-out knockout.
    ceiling = results[(results["model"] == "ceiling") & (results["metric"] == "pds")]
    units = results[(results["model"] == "mean") & (results["metric"] == "pds")]
    assert set(ceiling[PERTURBATION]) == set(units[PERTURBATION])
