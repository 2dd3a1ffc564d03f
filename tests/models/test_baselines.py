"""Each simple baseline against a computation by hand (plain numpy group means)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, SPLIT, TEST, TRAIN
from celltwin.models import (
    AdditiveBaseline,
    ContextShiftBaseline,
    ControlBaseline,
    MeanBaseline,
    NearestPerturbationBaseline,
    UnseenConditionError,
    get_model,
)


def _dense(adata: AnnData) -> np.ndarray:
    x = adata.X
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _mask(
    adata: AnnData, context: str, perturbation: str, *, train_only: bool = True
) -> np.ndarray:
    obs = adata.obs.astype(str)
    mask = (obs[CONTEXT] == context) & (obs[PERTURBATION] == perturbation)
    if train_only:
        mask &= obs[SPLIT] == TRAIN
    return mask.to_numpy()


def _delta(adata: AnnData, context: str, perturbation: str) -> np.ndarray:
    """Training effect by hand: mean of the condition's cells minus the context's control mean."""
    x = _dense(adata)
    return x[_mask(adata, context, perturbation)].mean(0) - x[_mask(adata, context, CONTROL)].mean(
        0
    )


def _controls(adata: AnnData, context: str) -> np.ndarray:
    return _dense(adata)[_mask(adata, context, CONTROL, train_only=False)]


def _predicted(model, adata: AnnData, context: str, perturbation: str) -> np.ndarray:
    return model.predict(adata, conditions=[(context, perturbation)]).X.astype(np.float64)


def _train_labels(adata: AnnData, context: str) -> list[str]:
    obs = adata.obs.astype(str)
    keep = (obs[CONTEXT] == context) & (obs[SPLIT] == TRAIN) & (obs[PERTURBATION] != CONTROL)
    return sorted(set(obs.loc[keep, PERTURBATION]))


def test_control_returns_the_control_cells(experiment) -> None:
    adata = experiment.adata
    model = ControlBaseline().fit(adata)
    for context, perturbation in [("A", experiment.seen_single), ("C", "ANYTHING+ELSE")]:
        got = _predicted(model, adata, context, perturbation)
        np.testing.assert_array_equal(got, _controls(adata, context).astype(np.float32))


def test_mean_is_the_equal_weight_mean_of_training_deltas(experiment) -> None:
    adata = experiment.adata
    model = MeanBaseline().fit(adata)
    deltas = {c: [_delta(adata, c, p) for p in _train_labels(adata, c)] for c in ("A", "B")}
    for context in ("A", "B"):
        mean_delta = np.mean(deltas[context], axis=0)
        np.testing.assert_allclose(model.mean_effect(context), mean_delta, atol=1e-9)
        # Every condition gets the same shift, applied to each control cell, clipped at 0.
        expected = np.maximum(_controls(adata, context) + mean_delta, 0.0)
        for perturbation in (experiment.seen_single, experiment.held_single, "ZZZ"):
            got = _predicted(model, adata, context, perturbation)
            np.testing.assert_allclose(got, expected, atol=1e-5)
    # An unseen context gets the mean over every training condition of every context.
    pooled = np.mean(deltas["A"] + deltas["B"], axis=0)
    got = _predicted(model, adata, experiment.unseen_context, experiment.seen_single)
    expected = np.maximum(_controls(adata, experiment.unseen_context) + pooled, 0.0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (got == 0).any() and (_controls(adata, "C") + pooled < 0).any()  # clipping happened


def test_mean_weighs_conditions_equally_not_cells(experiment) -> None:
    adata = experiment.adata
    # Keep 3 of the 12 cells of one condition: a cell-weighted mean would now differ.
    rows = np.flatnonzero(_mask(adata, "A", experiment.seen_single))
    uneven = adata[~np.isin(np.arange(adata.n_obs), rows[3:])].copy()
    labels = _train_labels(uneven, "A")
    deltas = np.array([_delta(uneven, "A", p) for p in labels])
    sizes = np.array([_mask(uneven, "A", p).sum() for p in labels])
    equal, weighted = deltas.mean(axis=0), sizes @ deltas / sizes.sum()
    assert np.abs(equal - weighted).max() > 0.01
    np.testing.assert_allclose(MeanBaseline().fit(uneven).mean_effect("A"), equal, atol=1e-9)


def test_additive_is_control_plus_the_sum_of_singles(experiment) -> None:
    adata = experiment.adata
    model = AdditiveBaseline().fit(adata)
    combo = experiment.held_combo
    first, second = combo.split("+")
    for context in ("A", "B"):
        ctrl = _controls(adata, context)
        expected = np.maximum(
            ctrl + _delta(adata, context, first) + _delta(adata, context, second), 0
        )
        np.testing.assert_allclose(_predicted(model, adata, context, combo), expected, atol=1e-5)
        # A single is predicted by its own training effect.
        single = experiment.seen_single
        expected = np.maximum(ctrl + _delta(adata, context, single), 0)
        np.testing.assert_allclose(_predicted(model, adata, context, single), expected, atol=1e-5)
    with pytest.raises(UnseenConditionError, match=rf"single\(s\) '{experiment.held_single}'"):
        model.predict(adata, conditions=[("A", f"{experiment.held_single}+{first}")])


def test_context_shift_is_the_mean_effect_in_the_other_contexts(experiment) -> None:
    adata = experiment.adata
    model = ContextShiftBaseline().fit(adata)
    p = experiment.seen_single
    both = np.mean([_delta(adata, "A", p), _delta(adata, "B", p)], axis=0)
    expected = np.maximum(_controls(adata, "C") + both, 0)
    np.testing.assert_allclose(_predicted(model, adata, "C", p), expected, atol=1e-5)
    # The target context's own effect is never used, even when seen.
    expected = np.maximum(_controls(adata, "A") + _delta(adata, "B", p), 0)
    np.testing.assert_allclose(_predicted(model, adata, "A", p), expected, atol=1e-5)
    with pytest.raises(UnseenConditionError, match="measured in no context"):
        model.predict(adata, conditions=[("C", experiment.held_single)])


def test_nearest_perturbation_uses_the_most_similar_training_effect(experiment) -> None:
    adata = experiment.adata
    labels = _train_labels(adata, "A")
    singles = [p for p in labels if "+" not in p]
    target = singles[1]
    # An embedding where the held-out perturbation points almost exactly at `target`.
    rng = np.random.default_rng(0)
    rows = {p: rng.standard_normal(4) for p in singles}
    rows[experiment.held_single] = 2.0 * rows[target] + 0.01 * rng.standard_normal(4)
    embedding = pd.DataFrame(rows).T
    model = NearestPerturbationBaseline().fit(adata, perturbation_features=embedding)
    assert model.embedding_ == "external"
    found = model.neighbors([("A", experiment.held_single), ("B", singles[0])])
    assert found["neighbor"].tolist() == [target, singles[0]]
    assert found["similarity"].iloc[0] > 0.99 and found["similarity"].iloc[1] == 1.0
    expected = np.maximum(_controls(adata, "A") + _delta(adata, "A", target), 0)
    got = _predicted(model, adata, "A", experiment.held_single)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Combinations without their own row: the sum of their components' rows.
    combo = experiment.held_combo

    def vec(p: str) -> np.ndarray:
        return sum(rows[c] for c in p.split("+"))

    cosine = {
        p: vec(p) @ vec(combo) / np.linalg.norm(vec(p)) / np.linalg.norm(vec(combo))
        for p in labels  # training singles and combinations of context A
    }
    assert model.neighbors([("A", combo)])["neighbor"].item() == max(cosine, key=cosine.get)


def test_nearest_perturbation_default_is_the_gene_embedding(experiment) -> None:
    adata = experiment.adata
    model = NearestPerturbationBaseline(n_components=4).fit(adata)
    assert model.embedding_ == "gene" and model.gene_embedding_.shape == (adata.n_vars, 4)
    found = model.neighbors([("A", experiment.seen_single), ("A", experiment.held_single)])
    assert found["neighbor"].iloc[0] == experiment.seen_single  # a seen perturbation is its own
    neighbor = found["neighbor"].iloc[1]
    assert neighbor in _train_labels(adata, "A")
    # Check the choice by hand: cosine between rows of the gene embedding.
    genes = list(adata.var_names)
    g = model.gene_embedding_

    def vec(p: str) -> np.ndarray:
        return sum(g[genes.index(c)] for c in p.split("+"))

    target = vec(experiment.held_single)
    cos = {
        p: vec(p) @ target / np.linalg.norm(vec(p)) / np.linalg.norm(target)
        for p in _train_labels(adata, "A")
    }
    assert neighbor == max(cos, key=cos.get)
    expected = np.maximum(_controls(adata, "A") + _delta(adata, "A", neighbor), 0)
    np.testing.assert_allclose(
        _predicted(model, adata, "A", experiment.held_single), expected, atol=1e-5
    )
    with pytest.raises(UnseenConditionError, match="NOT_A_GENE"):
        model.predict(adata, conditions=[("A", "NOT_A_GENE")])


def test_doses_are_part_of_the_condition(make_cells) -> None:
    n = 6
    rng = np.random.default_rng(1)
    effects = {
        ("K", "a", "1"): rng.normal(0, 0.5, n),
        ("K", "a", "10"): rng.normal(0, 0.5, n),
        ("K", "b", "10"): rng.normal(0, 0.5, n),
        ("K", "a+b", "1+10"): rng.normal(0, 0.5, n),
    }
    splits = {("K", "a+b", "1+10"): TEST}
    cells = make_cells(effects, n_genes=n, perturbation_type="drug", splits=splits)
    x = _dense(cells)
    obs = cells.obs

    def delta(p: str, d: str) -> np.ndarray:
        sel = ((obs[PERTURBATION] == p) & (obs[DOSE] == d)).to_numpy()
        return x[sel].mean(0) - x[(obs[PERTURBATION] == CONTROL).to_numpy()].mean(0)

    ctrl = x[(obs[PERTURBATION] == CONTROL).to_numpy()]
    additive = AdditiveBaseline().fit(cells)
    got = additive.predict(cells, conditions=[("K", "a+b", "1+10")])
    expected = np.maximum(ctrl + delta("a", "1") + delta("b", "10"), 0)
    np.testing.assert_allclose(got.X, expected, atol=1e-5)
    assert got.obs[DOSE].unique().tolist() == ["1+10"]
    with pytest.raises(UnseenConditionError, match="'b' at dose '1'"):
        additive.predict(cells, conditions=[("K", "a+b", "1+1")])
    # The mean baseline counts each (perturbation, dose) once.
    mean = MeanBaseline().fit(cells)
    by_hand = np.mean([delta("a", "1"), delta("a", "10"), delta("b", "10")], axis=0)
    np.testing.assert_allclose(mean.mean_effect("K"), by_hand, atol=1e-6)


@pytest.mark.parametrize("name", ["mean", "additive", "context_shift", "linear"])
def test_fit_without_perturbed_cells_is_refused_or_trivial(name: str, make_cells) -> None:
    cells = make_cells({("K", "a", ""): np.ones(4)}, n_genes=4, splits={("K", "a", ""): TEST})
    model = get_model(name)
    if name in ("mean", "linear"):
        with pytest.raises(ValueError, match="no perturbed training cells"):
            model.fit(cells)
    else:  # nothing to look up: every perturbed condition is refused at prediction
        with pytest.raises(UnseenConditionError):
            model.fit(cells).predict(cells, conditions=[("K", "a")])
