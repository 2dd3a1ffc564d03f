"""The virtual twin: a simulated disease (a gene activated) is screened back to its reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltwin import pl
from celltwin.models import UnseenConditionError, get_model, predict_effects
from celltwin.screen import POPULATION, genes, virtual_twin
from celltwin.simulate import simulate

COLUMNS = (
    "rank",
    "label",
    "perturbation",
    "dose",
    "kind",
    "score",
    "lower",
    "upper",
    "pvalue",
    "fdr",
    "in_domain",
    "prediction_source",
    "top_genes",
)  # the contract

KW = dict(n_genes=60, n_tfs=8, contexts=("A", "B"), n_perturbations=10, combinations=0,
          cells_per_condition=40, seed=3)  # fmt: skip


@pytest.fixture(scope="module")
def world():
    knockdowns = simulate(perturbation_types=("crispri",), **KW)
    activations = simulate(perturbation_types=("crispra",), **KW)
    train = knockdowns.adata.copy()
    train.obs["split"] = "train"
    model = get_model("transition", n_members=1, max_steps=20, progress=False).fit(train)
    cells = activations.adata
    gene = "TF04"  # a TF: its activation moves many genes (distance 1.24 from the reference)
    sample = cells[((cells.obs["context"] == "A") & (cells.obs["perturbation"] == gene)).to_numpy()]
    ref = train[
        ((train.obs["context"] == "A") & (train.obs["perturbation"] == "control")).to_numpy()
    ]
    return model, train, sample, ref, gene, list(knockdowns.perturbations.index)


def test_knockdown_of_the_activated_gene_ranks_first(world):
    model, _, sample, ref, gene, candidates = world
    result = virtual_twin(model, sample, reference=ref, candidates=candidates, top=3, n_cells=30)
    table = result.table
    assert list(table.columns) == list(COLUMNS)
    assert table["label"].iloc[0] == gene
    assert table["score"].iloc[0] > 0  # it moves the sample toward the reference
    assert list(table["rank"]) == list(range(1, len(candidates) + 1))
    assert (np.diff(table["score"].to_numpy()) <= 0).all()
    assert set(table["label"]) == set(candidates)
    # a new context: every prediction is a transfer, with an in-domain score
    assert (table["prediction_source"] == "transferred").all()
    assert table["in_domain"].between(0, 1).all()
    assert result.meta["context_seen"] is False and result.context == "sample"
    # scores are the objective on the model's own effects for the sample as a context
    query = sample.copy()
    query.obs["context"], query.obs["perturbation"] = "sample", "control"
    effects = predict_effects(
        model, query, conditions=[("sample", c) for c in candidates], n_cells=30
    )
    direct = result.objective.score(np.asarray(effects.X), list(effects.var_names))
    by_label = dict(zip(candidates, direct, strict=True))
    np.testing.assert_allclose(table["score"], [by_label[x] for x in table["label"]], rtol=1e-6)
    # the engine's score intervals (from the effect intervals), p-values and FDR
    assert np.isfinite(table[["lower", "upper"]].to_numpy()).all()
    assert (table["lower"] <= table["upper"]).all()
    assert table["pvalue"].between(0, 1).all() and (table["fdr"] >= table["pvalue"] - 1e-12).all()
    assert table["top_genes"].iloc[0].split(";")[0] == gene  # its own knockdown moves it most


def test_populations_and_effects_for_plotting(world):
    model, _, sample, ref, _, candidates = world
    result = virtual_twin(
        model, sample, reference=ref, candidates=genes(candidates), top=2, n_cells=25, seed=1
    )
    counts = result.cells.obs[POPULATION].value_counts()
    hits = list(result.table["label"].head(2))
    assert set(counts.index) == {"sample", "reference", *hits}
    assert (counts == 25).all()
    assert list(result.effects.obs_names) == hits
    assert {"lower", "upper"} <= set(result.effects.layers)
    # the top hit's predicted cells sit closer to the reference than the sample does
    x = np.asarray(result.cells.X)
    pop = result.cells.obs[POPULATION].to_numpy()
    mean = {p: x[pop == p].mean(axis=0) for p in ("sample", "reference", hits[0])}
    gap = np.linalg.norm(mean["sample"] - mean["reference"])
    assert np.linalg.norm(mean[hits[0]] - mean["reference"]) < gap
    # the page shows bars, the top hit's volcano and the populations
    assert pl.screen_report(result).count("<svg") == 3


def test_pairs_of_top(world):
    model, _, sample, ref, _gene, candidates = world
    result = virtual_twin(
        model, sample, reference=ref, candidates=candidates, top=2, pairs_of_top=3, n_cells=10
    )
    pairs = result.table[result.table["perturbation"].str.contains("+", regex=False)]
    assert len(pairs) == 3 and len(result.table) == len(candidates) + 3
    assert "3 pairs" in result.meta["pairs"]
    assert set(pairs["prediction_source"]) == {"composed"}


def test_origin_context_and_models_that_refuse_new_ones(world):
    _, train, sample, ref, _gene, candidates = world
    nearest = get_model("nearest_perturbation").fit(train)
    with pytest.raises(UnseenConditionError, match="sample"):
        virtual_twin(nearest, sample, reference=ref, candidates=candidates)
    result = virtual_twin(
        nearest, sample, reference=ref, candidates=candidates, context_name="A", top=2
    )
    assert result.meta["context_seen"] is True
    assert result.table["lower"].isna().all()  # no intervals from this baseline
    assert POPULATION in result.cells.obs


def test_candidates_as_a_table(world):
    model, _, sample, ref, gene, candidates = world
    table = pd.DataFrame({"perturbation": candidates[-4:]})
    result = virtual_twin(model, sample, reference=ref, candidates=table, top=1, n_cells=5)
    assert list(result.table["label"].sort_values()) == sorted(candidates[-4:])
    assert result.table["label"].iloc[0] == gene


def test_bad_inputs(world):
    model, _, sample, ref, _, candidates = world
    with pytest.raises(ValueError, match="'top'"):
        virtual_twin(model, sample, reference=ref, candidates=candidates, top=0)
    with pytest.raises(ValueError, match="no perturbation"):
        virtual_twin(model, sample, reference=ref, candidates=["control"])
    with pytest.raises(TypeError, match="one string"):
        virtual_twin(model, sample, reference=ref, candidates="TF01")
    with pytest.raises(ValueError, match="lacks 5 of the model's genes"):
        virtual_twin(model, sample[:, 5:], reference=ref, candidates=candidates)
