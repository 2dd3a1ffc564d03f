"""``transition``'s in-domain score (:mod:`celltwin.models._transition._domain`): range, order,
persistence, the widening of the intervals, and their coverage of unseen perturbations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from celltwin._keys import IN_DOMAIN, SPLIT, TEST, TRAIN
from celltwin.models._transition import TransitionModel
from celltwin.models._transition._domain import fit_slope, p_value, widen

TINY = dict(n_members=2, max_steps=40, hidden=16, n_latent=8, cells=16, patience=3, progress=False)
N_GENES, N_FEATURES = 40, 4


def _world(make_cells, n_train: int, queries: dict[str, np.ndarray], seed: int = 0):
    """Perturbations whose effects are a linear map of their features, one context; the
    ``queries`` (name -> feature vector) are held out (split ``test``)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.4, size=(N_FEATURES, N_GENES))
    names = [f"P{i:02d}" for i in range(n_train)]
    features = {n: rng.normal(size=N_FEATURES) for n in names} | queries
    effects = {("A", n, ""): f @ w + rng.normal(0, 0.1, N_GENES) for n, f in features.items()}
    splits = {("A", q, ""): TEST for q in queries}
    adata = make_cells(effects, n_genes=N_GENES, n_cells=12, splits=splits, seed=seed)
    table = pd.DataFrame(np.vstack(list(features.values())), index=list(features))
    return adata, table


def test_p_value_and_widening_are_monotone() -> None:
    reference = np.array([1.0, 2.0, 3.0])
    values = [p_value(d, reference) for d in (0.0, 0.5, 1.5, 2.5, 10.0)]
    assert values == [1.0, 1.0, 0.75, 0.5, 0.25]
    assert p_value(1.0, np.array([])) == 0.0
    factors = widen(np.linspace(1, 0, 11), 0.7)
    assert factors[0] == 1.0
    assert np.all(np.diff(factors) > 0)  # wider as the score falls
    np.testing.assert_array_equal(widen(np.linspace(1, 0, 5), 0.0), np.ones(5))
    # The slope follows the needed scale, never negative, capped.
    scores = np.linspace(0.05, 1.0, 12)
    assert fit_slope(scores, np.exp(0.5 * (1 - scores))) == pytest.approx(0.5)
    assert fit_slope(scores, np.exp(-0.5 * (1 - scores))) == 0.0
    assert fit_slope(scores, np.exp(9 * (1 - scores))) == pytest.approx(np.log(4))
    # Too few conditions to learn how the error grows with distance: no widening.
    assert fit_slope(scores[:5], np.exp(0.5 * (1 - scores[:5]))) == 0.0


def test_score_is_higher_near_training_and_survives_save_load(make_cells, tmp_path) -> None:
    rng = np.random.default_rng(5)
    queries = {"NEAR": rng.normal(size=N_FEATURES) * 0.3, "FAR": np.full(N_FEATURES, 9.0)}
    adata, features = _world(make_cells, 24, queries)
    model = TransitionModel(**TINY).fit(adata, perturbation_features=features)
    conditions = [("A", "NEAR"), ("A", "FAR"), ("A", "P00"), ("A", "control")]
    effects = model.predict_effects(adata, conditions=conditions)
    score = effects.obs[IN_DOMAIN].to_numpy()
    assert np.all((score >= 0) & (score <= 1))
    near, far, measured, control = score
    assert near > far
    assert far <= 0.1  # farther than every held-out training perturbation
    assert measured == 1.0 and control == 1.0
    # The cells of a prediction carry their condition's score.
    cells = model.predict(adata, conditions=conditions[:2], n_cells=5)
    np.testing.assert_array_equal(cells.obs[IN_DOMAIN].to_numpy(), np.repeat([near, far], 5))
    # An unseen context: scored by its distance to the training contexts (one here: 0).
    model.save(tmp_path / "m")
    loaded = TransitionModel.load(tmp_path / "m")
    assert loaded.domain_ == model.domain_
    again = loaded.predict_effects(adata, conditions=conditions)
    np.testing.assert_array_equal(again.obs[IN_DOMAIN].to_numpy(), score)
    np.testing.assert_array_equal(again.layers["upper"], effects.layers["upper"])


def test_intervals_widen_as_the_score_falls(make_cells) -> None:
    rng = np.random.default_rng(5)
    queries = {"NEAR": rng.normal(size=N_FEATURES) * 0.3, "FAR": np.full(N_FEATURES, 9.0)}
    adata, features = _world(make_cells, 24, queries)
    model = TransitionModel(**TINY).fit(adata, perturbation_features=features)
    model.domain_ = {**model.domain_, "slope": 0.5}
    effects = model.predict_effects(adata, conditions=[("A", "NEAR"), ("A", "FAR")])
    width = effects.layers["upper"] - effects.layers["lower"]
    sd = effects.layers["sd"]
    near, far = effects.obs[IN_DOMAIN].to_numpy()
    assert near > far
    # The classical part of the half-width grows by widen(score): compare without the ensemble sd.
    classical = np.sqrt(np.maximum((width / 2) ** 2 - (1.645 * sd) ** 2, 0)).mean(axis=1)
    assert classical[1] / classical[0] == pytest.approx(
        float(widen(far, 0.5) / widen(near, 0.5)), rel=0.02
    )


def test_unseen_perturbations_are_covered_near_nominal(make_cells) -> None:
    rng = np.random.default_rng(3)
    queries = {f"Q{i:02d}": rng.normal(size=N_FEATURES) for i in range(16)}
    adata, features = _world(make_cells, 40, queries, seed=3)
    model = TransitionModel(**TINY).fit(adata, perturbation_features=features)
    test = adata[adata.obs[SPLIT] == TEST]
    assert len(test) and (adata.obs[SPLIT] == TRAIN).any()
    pred = model.predict_effects(adata, conditions=[("A", q) for q in queries])
    truth = np.vstack(
        [
            test[test.obs["perturbation"] == q].X.mean(axis=0)
            - adata[adata.obs["perturbation"] == "control"].X.mean(axis=0)
            for q in queries
        ]
    )
    inside = (truth >= pred.layers["lower"]) & (truth <= pred.layers["upper"])
    assert abs(inside.mean() - model.interval) <= 0.1


def test_score_falls_as_the_error_grows_on_a_nonlinear_world(make_cells) -> None:
    """Effects saturate in the features (tanh), so the feature ridge errs more the farther a
    knockout lies from the training ones: the score must order the errors."""
    rng = np.random.default_rng(7)
    w = rng.normal(0, 0.6, size=(N_FEATURES, N_GENES))
    train = {f"P{i:02d}": rng.normal(size=N_FEATURES) for i in range(30)}
    queries = {
        f"Q{i:02d}": rng.normal(size=N_FEATURES) * scale
        for i, scale in enumerate(np.linspace(0.3, 5.0, 12))
    }
    features = train | queries
    effects = {("A", n, ""): np.tanh(f @ w) for n, f in features.items()}
    splits = {("A", q, ""): TEST for q in queries}
    adata = make_cells(effects, n_genes=N_GENES, n_cells=12, splits=splits, seed=7)
    table = pd.DataFrame(np.vstack(list(features.values())), index=list(features))
    model = TransitionModel(**TINY).fit(adata, perturbation_features=table)
    pred = model.predict_effects(adata, conditions=[("A", q) for q in queries])
    error = [
        np.sqrt(np.mean((pred.X[i] - effects[("A", q, "")]) ** 2)) for i, q in enumerate(queries)
    ]
    rho = spearmanr(pred.obs[IN_DOMAIN].to_numpy(), error).statistic
    assert rho < -0.5
