"""The move_population objective: energy distance before minus after shifting the sample."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltwin.eval import energy_distance
from celltwin.screen import MOVE_POPULATION, PopulationSpace, move_population

N_GENES = 12


def _cells(rng: np.random.Generator, n: int, shift: np.ndarray, prefix: str) -> ad.AnnData:
    x = rng.gamma(4.0, 0.4, size=(n, N_GENES)) + shift
    return ad.AnnData(
        x.astype(np.float32),
        obs=pd.DataFrame(index=[f"{prefix}{i}" for i in range(n)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(N_GENES)]),
    )


@pytest.fixture
def pair() -> tuple[ad.AnnData, ad.AnnData, np.ndarray]:
    rng = np.random.default_rng(0)
    disease = np.zeros(N_GENES)
    disease[:3] = [1.5, 1.0, -0.8]
    return _cells(rng, 80, disease, "s"), _cells(rng, 90, 0.0, "r"), disease


def test_score_is_energy_distance_before_minus_after(pair):
    sample, reference, _ = pair
    objective = move_population(sample, reference, n_components=6, max_cells=60, n_null=0)
    genes = list(sample.var_names)
    effects = np.random.default_rng(1).normal(0, 0.5, size=(7, N_GENES))
    scores = objective.score(effects, genes)
    space = PopulationSpace.fit(sample, reference, n_components=6, max_cells=60)
    s, r = space.sample, space.reference
    shifts = effects @ space.basis.components.T
    before = energy_distance([s], [r])[0]
    direct = before - energy_distance([s + d for d in shifts], [r] * len(shifts))
    np.testing.assert_allclose(scores, direct, rtol=1e-5, atol=1e-6)  # float32 pairs
    assert space.distance_before == pytest.approx(before)


def test_reverser_scores_best_and_direction(pair):
    sample, reference, disease = pair
    objective = move_population(sample, reference, n_null=100)
    assert objective.direction == "higher"
    genes = list(sample.var_names)
    rng = np.random.default_rng(2)
    decoys = rng.normal(0, 1, size=(30, N_GENES))
    decoys *= np.linalg.norm(disease) / np.linalg.norm(decoys, axis=1, keepdims=True)
    effects = np.vstack([-disease, disease, decoys])
    scores = objective.score(effects, genes)
    assert scores[0] > 0 > scores[1]
    assert np.argmax(scores) == 0
    p = objective.pvalues(effects, genes, scores)
    assert p is not None and p.shape == (32,)
    assert p[0] == pytest.approx(1 / 101)  # beats every random direction of its size
    assert p[1] == pytest.approx(1.0)
    assert ((p > 0) & (p <= 1)).all()
    # random directions of the same norm are the null: their p-values are spread out
    assert np.median(p[2:]) > 0.1


def test_genes_are_matched_by_name(pair):
    sample, reference, disease = pair
    objective = move_population(sample, reference, n_null=0)
    genes = list(sample.var_names)
    order = np.random.default_rng(3).permutation(N_GENES)
    full = objective.score(-disease[None, order], [genes[i] for i in order])
    np.testing.assert_allclose(full, objective.score(-disease[None, :], genes))
    # genes the effects lack count as unchanged; extra genes are ignored
    part = objective.score(np.c_[-disease[None, :3], [[9.0]]], [*genes[:3], "other"])
    cut = -disease.copy()
    cut[3:] = 0
    np.testing.assert_allclose(part, objective.score(cut[None, :], genes))
    with pytest.raises(ValueError, match="share no gene"):
        objective.score(np.ones((1, 2)), ["x", "y"])


def test_bad_inputs_are_named(pair):
    sample, reference, _ = pair
    with pytest.raises(ValueError, match="'reference'"):
        move_population(sample, reference[:1])
    other = reference.copy()
    other.var_names = [f"h{j}" for j in range(N_GENES)]
    with pytest.raises(ValueError, match="share 0 genes"):
        move_population(sample, other)
    with pytest.raises(ValueError, match="'n_null'"):
        move_population(sample, reference, n_null=-1)


def test_registry_entry_and_many_candidates(pair):
    sample, reference, _ = pair
    assert MOVE_POPULATION.name == "move_population"
    assert MOVE_POPULATION.build is move_population
    objective = MOVE_POPULATION.build(sample, reference, n_null=50)
    assert objective.direction == MOVE_POPULATION.direction
    effects = np.random.default_rng(4).normal(0, 0.3, size=(3000, N_GENES))
    genes = list(sample.var_names)
    scores = objective.score(effects, genes)
    p = objective.pvalues(effects, genes, scores)
    assert scores.shape == (3000,) and np.isfinite(scores).all()
    assert p is not None and np.isfinite(p).all()


def test_registered_and_built_by_name(pair):
    from celltwin.screen import OBJECTIVES, get_objective

    sample, reference, disease = pair
    assert OBJECTIVES["move_population"] is MOVE_POPULATION
    objective = get_objective("move_population", sample=sample, reference=reference, n_null=0)
    assert objective.score(-disease[None, :], list(sample.var_names))[0] > 0
    with pytest.raises(ValueError, match="needs parameter"):
        get_objective("move_population")
