"""``transition.predict_effects`` in batches: the same numbers as generating every condition's
cells one at a time, shared control cells (``n_cells``), per-member effects, and the network's
mean correction against its forward pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.models._conditions import as_conditions, condition_keys
from celltwin.models._transition import TransitionModel
from celltwin.models._transition._batched import draw_cells
from celltwin.models._transition._domain import widen
from celltwin.models._transition._estimate import VIEWS
from celltwin.models._transition._intervals import half_width, normal_quantile
from celltwin.models._transition._module import TransitionModule
from celltwin.models._transition._query import _QueryContexts

TINY = dict(n_members=3, max_steps=40, hidden=16, n_latent=8, cells=16, patience=3, progress=False)


@pytest.fixture(scope="module")
def fitted(experiment) -> TransitionModel:
    return TransitionModel(**TINY).fit(experiment.adata)


def _with_weights(fitted: TransitionModel, scale: float) -> TransitionModel:
    """The fitted model with random network weights, so that the correction matters (a fit
    this short keeps the zero start of the output layer): members disagree and, at larger
    ``scale``, some genes' generated mean would fall below zero (the floor is active)."""
    model = copy.deepcopy(fitted)
    rng = np.random.default_rng(0)
    model.member_weights_ = scale * rng.standard_normal(fitted.member_weights_.shape)
    return model


@pytest.fixture(scope="module")
def model(fitted) -> TransitionModel:
    return _with_weights(fitted, 0.15)


@pytest.fixture(scope="module")
def conditions(experiment) -> list[tuple[str, str]]:
    """One condition of every source, over the three contexts."""
    return [
        ("C", experiment.seen_single),  # context transfer
        ("A", experiment.held_combo),  # combination
        ("A", experiment.seen_single),  # measured
        ("B", CONTROL),
        ("A", experiment.held_single),  # prior features
        ("C", experiment.held_single),
        ("B", experiment.held_combo),
    ]


def _generated_one_by_one(model, adata, conditions, *, seed):
    """What ``predict_effects`` returned before batching: per condition and member, the mean
    of the cells the member generates from every control cell of the context (floored at
    zero, sparse gains) minus their mean; then the ensemble's mean, sd and interval."""
    table = as_conditions(conditions)
    controls, contexts = model._query_controls(adata)
    query = _QueryContexts(model, controls, contexts)
    estimates, scores = model._scored_estimates(table, query)
    n, n_genes = len(table), len(model.genes_)
    mean, sd = np.zeros((n, n_genes)), np.zeros((n, n_genes))
    lower, upper = np.full((n, n_genes), np.nan), np.full((n, n_genes), np.nan)
    z = normal_quantile(float(model.interval))
    for i, (key, est) in enumerate(zip(condition_keys(table), estimates, strict=True)):
        if est is None:
            lower[i] = upper[i] = 0.0
            continue
        cells = query.controls(key[0])
        each = np.vstack(
            [
                model._member_effect(m, cells, key, est, seed=seed + i)
                for m in range(model.member_weights_.shape[0])
            ]
        )
        mean[i] = each.mean(axis=0)
        if est.source == "own":
            continue
        sd[i] = each.std(axis=0)
        scale = model.calibration_ * float(widen(scores[i], model.domain_["slope"]))
        half = half_width(model.error_var_[VIEWS.index(est.source)], sd[i], calibration=scale, z=z)
        lower[i], upper[i] = mean[i] - half, mean[i] + half
    return mean, sd, lower, upper


@pytest.mark.parametrize("scale", [0.15, 0.4])
def test_default_call_equals_generating_cells_one_condition_at_a_time(
    experiment, fitted, conditions, scale
) -> None:
    model = _with_weights(fitted, scale)
    got = model.predict_effects(experiment.adata, conditions=conditions, seed=3)
    assert got.obs["source"].tolist() == [
        "context", "combination", "own", "control", "features", "features", "combination",
    ]  # fmt: skip
    mean, sd, lower, upper = _generated_one_by_one(model, experiment.adata, conditions, seed=3)
    for name, ref in (("X", mean), ("sd", sd), ("lower", lower), ("upper", upper)):
        value = got.X if name == "X" else got.layers[name]
        np.testing.assert_allclose(value, ref, rtol=1e-5, atol=1e-5, err_msg=name)
    assert np.all(sd[[0, 4, 5]].max(axis=1) > 1e-3)  # members disagree: the network is applied
    if scale == 0.4:  # some member's generated mean is floored at zero
        members = model.predict_effects(experiment.adata, conditions=conditions, members=True)
        controls = experiment.adata[(experiment.adata.obs[PERTURBATION] == CONTROL).to_numpy()]
        base = np.asarray(controls[(controls.obs[CONTEXT] == "C").to_numpy()].X.mean(axis=0))
        assert np.isclose(members.layers["member0"][0] + base.ravel(), 0.0, atol=1e-5).any()


@pytest.mark.parametrize("n_cells", [None, 7])
def test_batches_equal_one_condition_at_a_time(experiment, model, conditions, n_cells) -> None:
    adata = experiment.adata
    whole = model.predict_effects(adata, conditions=conditions, seed=1, n_cells=n_cells)
    single = model.predict_effects(
        adata, conditions=conditions, seed=1, n_cells=n_cells, batch_size=1
    )
    for layer in ("lower", "upper", "sd"):
        np.testing.assert_allclose(single.layers[layer], whole.layers[layer], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(single.X, whole.X, rtol=1e-5, atol=1e-5)
    if n_cells is not None:
        # Shared cells and noise: a condition's effect does not depend on the others asked.
        for i, condition in enumerate(conditions):
            alone = model.predict_effects(adata, conditions=[condition], seed=1, n_cells=n_cells)
            np.testing.assert_allclose(alone.X[0], whole.X[i], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(
                alone.layers["upper"][0], whole.layers["upper"][i], rtol=1e-5, atol=1e-5
            )


def test_n_cells_is_a_seeded_draw_shared_by_the_conditions(experiment, model, conditions) -> None:
    adata = experiment.adata
    a = model.predict_effects(adata, conditions=conditions, seed=5, n_cells=6)
    b = model.predict_effects(adata, conditions=conditions, seed=5, n_cells=6)
    np.testing.assert_array_equal(a.X, b.X)
    c = model.predict_effects(adata, conditions=conditions, seed=6, n_cells=6)
    assert not np.array_equal(a.X[0], c.X[0])  # a corrected condition: another draw
    np.testing.assert_array_equal(a.X[2], c.X[2])  # measured: no cells involved
    # Fewer cells change only the network's averaged correction, so the effect stays close.
    full = model.predict_effects(adata, conditions=conditions, seed=5)
    assert np.abs(a.X - full.X).max() < 0.25 * np.abs(full.X).max()
    # The draw: without replacement, sorted, reproducible, all cells when asked for more.
    cells = np.arange(40.0)[:, None] * np.ones((1, 3))
    drawn = draw_cells(cells, 6, seed=5, context="A")
    np.testing.assert_array_equal(drawn, draw_cells(cells, 6, seed=5, context="A"))
    assert len(np.unique(drawn[:, 0])) == 6 and np.all(np.diff(drawn[:, 0]) > 0)
    assert not np.array_equal(drawn, draw_cells(cells, 6, seed=5, context="B"))
    assert draw_cells(cells, 50, seed=5, context="A") is cells


def test_members_layers_hold_each_members_effect(experiment, model, conditions) -> None:
    adata = experiment.adata
    plain = model.predict_effects(adata, conditions=conditions, n_cells=8)
    assert not [k for k in plain.layers if k.startswith("member")]
    eff = model.predict_effects(adata, conditions=conditions, n_cells=8, members=True)
    names = [f"member{m}" for m in range(model.member_weights_.shape[0])]
    assert sorted(k for k in eff.layers if k.startswith("member")) == names
    stack = np.stack([np.asarray(eff.layers[n], dtype=np.float64) for n in names])
    np.testing.assert_allclose(stack.mean(axis=0), eff.X, atol=1e-6)
    corrected = eff.obs["source"].to_numpy() != "own"
    np.testing.assert_allclose(stack.std(axis=0)[corrected], eff.layers["sd"][corrected], atol=1e-6)
    np.testing.assert_array_equal(eff.X, plain.X)
    controls = adata[(adata.obs[PERTURBATION] == CONTROL).to_numpy()]
    # Effects are changes of cells that cannot go below zero.
    context_mean = {
        c: np.asarray(controls[(controls.obs[CONTEXT] == c).to_numpy()].X.mean(axis=0)).ravel()
        for c in ("A", "B", "C")
    }
    for i, c in enumerate(eff.obs[CONTEXT]):
        assert np.all(stack[:, i] >= -context_mean[c] - 1e-5)


@pytest.mark.parametrize("bad", [{"n_cells": 0}, {"batch_size": 0}, {"n_cells": 2.5}])
def test_bad_settings_are_refused_with_their_name(experiment, model, bad) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        model.predict_effects(experiment.adata, conditions=[("A", CONTROL)], **bad)


@pytest.mark.parametrize("n_layers, n_noise", [(2, 4), (1, 0), (0, 3)])
def test_mean_correction_is_the_forward_pass_averaged_over_cells(n_layers, n_noise) -> None:
    torch.manual_seed(0)
    module = TransitionModule(
        n_latent=5, n_components=3, feature_dim=6, n_views=4, n_noise=n_noise, hidden=8,
        n_layers=n_layers, pert_dim=4,
    )  # fmt: skip
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()  # the output layer starts at zero: give it values
    b, m = 4, 11
    z = torch.randn(m, 5)
    inputs = (
        torch.randn(b, 10),
        torch.randn(b, 5),
        (torch.randint(0, 4, (b, 2)), torch.ones(b, 2), torch.randn(b, 2, 6), torch.randn(b, 2)),
        torch.eye(4)[torch.randint(0, 4, (b,))],
    )
    for noise in (torch.randn(1, m, n_noise), torch.randn(b, m, n_noise)):
        with torch.no_grad():
            got = module.mean_correction(z, *inputs, noise)
            ref = module(z.expand(b, m, 5), *inputs, noise.expand(b, m, n_noise)).mean(dim=1)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
