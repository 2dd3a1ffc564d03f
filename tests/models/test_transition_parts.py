"""``transition``'s parts: zero-start component vectors and the per-view validation gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, split_combination
from celltwin.models._base import as_conditions
from celltwin.models._transition import TransitionModel
from celltwin.models._transition._estimator import _QueryContexts
from celltwin.models._transition._features import VIEWS
from celltwin.models._transition._module import TransitionModule
from celltwin.models._transition._train import Examples, Pools, Settings, view_gate
from celltwin.simulate import simulate

TINY = dict(n_members=2, max_steps=40, hidden=16, n_latent=8, cells=16, patience=3, progress=False)


@pytest.fixture(scope="module")
def one_context() -> tuple[object, list[str]]:
    """One context, singles and pairs, one pair held out: parts of training pairs vs the rest."""
    sim = simulate(
        n_genes=40,
        n_tfs=6,
        contexts=("A",),
        n_perturbations=6,
        combinations=3,
        cells_per_condition=15,
        seed=5,
    )
    adata = sim.adata
    pert = adata.obs[PERTURBATION].astype(str).to_numpy()
    combos = sorted({p for p in pert if len(split_combination(p)) > 1})
    adata.obs[SPLIT] = pd.Categorical(np.where(pert == combos[0], TEST, TRAIN))
    return adata, combos


def _module_dims(**over: int) -> dict[str, int]:
    dims = dict(
        n_latent=3, n_components=4, feature_dim=0, n_views=len(VIEWS), n_noise=0, hidden=8,
        n_layers=1, pert_dim=4,
    )  # fmt: skip
    return {**dims, **over}


def test_component_vectors_start_at_zero_and_unused_ones_stay_there(one_context) -> None:
    module = TransitionModule(**_module_dims())
    assert torch.count_nonzero(module.perturbation.embedding.weight) == 0
    adata, combos = one_context
    model = TransitionModel(**{**TINY, "max_steps": 60, "patience": 100}).fit(adata)
    # One context: singles are trained as unseen ("features" view, index 0), so only the parts
    # of training pairs are ever looked up; the others must be exactly "unknown" (zero).
    in_training_pairs = {c for p in combos[1:] for c in split_combination(p)}
    for member in range(model.member_weights_.shape[0]):
        rows = model._member_module(member).perturbation.embedding.weight.detach().numpy()
        for i, component in enumerate(model.components_, start=1):
            if component not in in_training_pairs:
                np.testing.assert_array_equal(rows[i], 0.0, err_msg=component)
    trained = [model._member_module(m) for m in range(model.member_weights_.shape[0])]
    assert any(
        np.abs(t.perturbation.embedding.weight.detach().numpy()).sum() > 0 for t in trained
    ), "the parts of training pairs were never updated"


def _gate_inputs(n_per_view: dict[int, int], *, m: int = 40) -> tuple[Pools, Examples, Settings]:
    """Cells already shifted by their examples' classical estimate: a perfect base."""
    gen = torch.Generator().manual_seed(0)
    k = 3
    controls = torch.randn((m, k), generator=gen)
    cells, conditions, views, bases = [controls], [], [], []
    offset = m
    for view, n in n_per_view.items():
        for _ in range(n):
            base = torch.randn(k, generator=gen)
            cells.append(torch.randn((m, k), generator=gen) + base)
            conditions.append(torch.arange(offset, offset + m))
            offset += m
            views.append(view)
            bases.append(base)
    pools = Pools(
        cells=torch.vstack(cells),
        summary=torch.zeros((1, 2 * k)),
        controls=[torch.arange(m)],
        conditions=conditions,
    )
    e = len(views)
    examples = Examples(
        context=torch.zeros(e, dtype=torch.long),
        condition=torch.arange(e),
        base=torch.vstack(bases),
        view=torch.nn.functional.one_hot(torch.as_tensor(views), len(VIEWS)).float(),
        index=torch.zeros((e, 1), dtype=torch.long),
        mask=torch.ones((e, 1)),
        features=torch.zeros((e, 1, 0)),
        log_dose=torch.zeros((e, 1)),
    )
    settings = Settings(
        max_steps=1, batch_size=4, cells=16, lr=1e-3, weight_decay=0.0,
        correction_penalty=0.1, patience=1, eval_every=1,
    )  # fmt: skip
    return pools, examples, settings


def test_view_gate_drops_views_the_correction_makes_worse() -> None:
    pools, val, settings = _gate_inputs({0: 3, 1: 3})
    module = TransitionModule(**_module_dims())
    # Zero correction is the classical estimate itself: nothing to drop.
    assert view_gate(module, pools, val, settings, seed=0) == [0, 1, 2]
    last = module.cell[-1]
    assert isinstance(last, torch.nn.Linear)
    # A correction that shifts every cell far away only for examples of view 1 (its one-hot
    # input reaches the output through the condition network): view 1 is dropped, view 0 kept,
    # view 2 (no validation examples) kept for lack of evidence.
    first, second = module.condition[0], module.condition[-1]
    assert isinstance(first, torch.nn.Linear) and isinstance(second, torch.nn.Linear)
    cell_in = module.cell[0]
    assert isinstance(cell_in, torch.nn.Linear)
    with torch.no_grad():
        for layer in (first, second, cell_in, last):
            layer.weight.zero_()
            layer.bias.zero_()
        first.weight[0, first.in_features - len(VIEWS) + 1] = 10.0  # unit 0 <- view 1's one-hot
        second.weight[0, 0] = 1.0
        cell_in.weight[0, 3] = 1.0  # after the 3 latent inputs: condition unit 0
        last.weight[:, 0] = 5.0
    assert view_gate(module, pools, val, settings, seed=0) == [0, 2]
    assert view_gate(module, pools, None, settings, seed=0) == [0, 1, 2]


def _classical_effect(model: TransitionModel, adata, query) -> np.ndarray:
    """The classical estimate applied to the context's controls, floored keeping the mean."""
    pert = adata.obs[PERTURBATION].astype(str).to_numpy()
    ctx = adata.obs[CONTEXT].astype(str).to_numpy()
    x = adata.X[(pert == CONTROL) & (ctx == "A")]
    cells = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    contexts = _QueryContexts(model, cells, np.full(len(cells), "A"))
    est = model._estimates(as_conditions(query), contexts)[0]
    assert est is not None
    return np.maximum(cells.mean(axis=0) + est.delta, 0.0) - cells.mean(axis=0)


def test_gated_member_predicts_the_classical_estimate(one_context) -> None:
    adata, combos = one_context
    # Hold out one part too, so the pair's estimate leans on features and the network applies.
    part = split_combination(combos[0])[0]
    adata = adata.copy()
    pert = adata.obs[PERTURBATION].astype(str).to_numpy()
    adata.obs[SPLIT] = pd.Categorical(np.where(np.isin(pert, [combos[0], part]), TEST, TRAIN))
    model = TransitionModel(**TINY).fit(adata)
    query = [("A", combos[0])]
    full = model.predict_effects(adata, conditions=query)
    assert full.obs["source"].tolist() == ["combination"]
    for record in model.training_:
        assert set(record["views"]) <= set(VIEWS)
        record["views"] = [v for v in record["views"] if v != "combination"]
    gated = model.predict_effects(adata, conditions=query)
    # Every member left the combination uncorrected, whatever the network weights.
    np.testing.assert_allclose(gated.X[0], _classical_effect(model, adata, query), atol=1e-6)
    assert np.abs(gated.X[0] - full.X[0]).max() > 0  # the gate changed something


def test_combination_of_measured_parts_is_not_corrected(one_context) -> None:
    # Both parts of the held-out pair were measured alone in its context: the prediction is
    # their sum plus the interaction law, untouched by the network (as measured conditions).
    adata, combos = one_context
    model = TransitionModel(**TINY).fit(adata)
    query = [("A", combos[0])]
    eff = model.predict_effects(adata, conditions=query)
    assert eff.obs["source"].tolist() == ["combination"]
    assert any(set(r["views"]) & {"combination"} for r in model.training_)  # it was trained
    np.testing.assert_allclose(eff.X[0], _classical_effect(model, adata, query), atol=1e-6)
    np.testing.assert_allclose(eff.layers["sd"][0], 0.0, atol=1e-6)  # members agree


def test_interaction_regression_recovers_a_known_pair_law() -> None:
    """The classical combination estimate learns an interaction law shared by all genes."""
    from celltwin.models._transition._features import PAIR_FEATURES, Transfer, pair_features

    rng = np.random.default_rng(0)
    n_genes, singles = 80, [f"G{i}" for i in range(8)]
    effects = {s: rng.normal(scale=0.5, size=n_genes) for s in singles}
    law = np.array([0.3, -0.2, -0.4, 0.1, 0.05])  # one coefficient per PAIR_FEATURES entry
    assert len(law) == len(PAIR_FEATURES)
    pairs = [(a, b) for i, a in enumerate(singles) for b in singles[i + 1 :]][:12]
    keys, delta = [], []
    for s in singles:
        keys.append(("A", s, ""))
        delta.append(effects[s])
    for a, b in pairs:
        parts = [effects[a], effects[b]]
        keys.append(("A", f"{a}+{b}", ""))
        delta.append(np.sum(parts, axis=0) + pair_features(parts) @ law)
    transfer = Transfer(
        keys, np.vstack(delta), {"A": np.zeros(2)}, tau=np.inf, features=None, ridge=1.0
    )
    # Ridge 1 against thousands of gene x pair rows: the law comes back almost exactly.
    np.testing.assert_allclose(transfer.pair_coef, law, atol=0.02)
    # A held-out pair of seen singles is predicted with its interaction, not just the sum.
    held = ("A", "G6+G7", "")
    parts = [effects["G6"], effects["G7"]]
    expected = np.sum(parts, axis=0) + pair_features(parts) @ law
    got = transfer.combination(held, np.zeros(2))
    assert got is not None
    assert np.abs(got - expected).max() < 0.05 * np.abs(pair_features(parts) @ law).max() + 1e-3
    # Singles carry no pair features.
    assert not pair_features([effects["G0"]]).any()


def test_floor_at_zero_keeps_each_gene_mean() -> None:
    from celltwin.models._transition._estimator import floor_at_zero

    rng = np.random.default_rng(1)
    cells = np.maximum(rng.normal(0.3, 1.0, size=(300, 40)), 0.0)  # many zeros, as in scRNA
    delta = rng.normal(0.0, 0.8, size=40)
    out = floor_at_zero(cells + delta)
    target = np.maximum(cells.mean(axis=0) + delta, 0.0)
    assert (out >= 0).all()
    np.testing.assert_allclose(out.mean(axis=0), target, atol=1e-9)
    # Plain clipping raises the mean of knocked-down genes; this is what the floor corrects.
    down = delta < -0.3
    assert (np.maximum(cells + delta, 0.0).mean(axis=0)[down] > target[down] + 1e-3).all()
    # Cells are shifted, never reordered, and genes that need no floor are left as they are.
    up = (cells + delta).min(axis=0) >= 0
    np.testing.assert_array_equal(out[:, up], (cells + delta)[:, up])
    order = np.argsort(cells[:, down], axis=0, kind="stable")
    assert (np.diff(np.take_along_axis(out[:, down], order, axis=0), axis=0) >= 0).all()
