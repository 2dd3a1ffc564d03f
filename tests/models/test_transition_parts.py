"""``transition``'s parts: zero-start component vectors and the per-view validation gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, split_combination
from celltwin.models import as_conditions
from celltwin.models._transition import TransitionModel
from celltwin.models._transition._estimate import VIEWS
from celltwin.models._transition._module import TransitionModule
from celltwin.models._transition._query import _QueryContexts
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
    assert view_gate(module, pools, val, settings, seed=0) == list(range(len(VIEWS)))
    last = module.cell[-1]
    assert isinstance(last, torch.nn.Linear)
    # A correction that shifts every cell far away only for examples of view 1 (its one-hot
    # input reaches the output through the condition network): view 1 is dropped, view 0 kept,
    # the views without validation examples kept for lack of evidence.
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
    assert view_gate(module, pools, val, settings, seed=0) == [0, *range(2, len(VIEWS))]
    assert view_gate(module, pools, None, settings, seed=0) == list(range(len(VIEWS)))


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
    from celltwin.models._transition._estimate import PAIR_FEATURES, pair_features
    from celltwin.models._transition._features import Transfer

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
    from celltwin.models._transition._cells import floor_at_zero

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


def _fold_world(n_contexts: int = 4, n_genes: int = 6, seed: int = 0):
    """Contexts whose genes change multiplicatively (first half) or by a log1p shift (rest).

    Every control cell of a context equals its mean, so the estimates are exact. Baselines
    differ a lot between contexts, which is what tells the two laws apart.
    """
    from celltwin.models._transition._estimate import FoldChange
    from celltwin.models._transition._features import Transfer

    rng = np.random.default_rng(seed)
    half = n_genes // 2
    fold = np.full(half, 3.0)
    shift = np.full(n_genes - half, 0.7)
    keys, delta, pert_lin, ctrl_lin, controls, latent = [], [], [], [], {}, {}
    for j in range(n_contexts):
        c = f"C{j}"
        base = rng.uniform(0.05, 20.0, size=n_genes)  # linear CP10k
        stim = np.r_[base[:half] * fold, np.expm1(np.log1p(base[half:]) + shift)]
        keys.append((c, "IFN", ""))
        delta.append(np.log1p(stim) - np.log1p(base))
        pert_lin.append(stim)
        ctrl_lin.append(base)
        controls[c] = np.tile(np.log1p(base), (5, 1))
        latent[c] = np.zeros(2)  # equal kernel weights
    fc = FoldChange(np.vstack(pert_lin), np.vstack(ctrl_lin), controls)
    transfer = Transfer(
        keys, np.vstack(delta), latent, tau=np.inf, features=None, ridge=1.0, fold_change=fc
    )
    return transfer, fc, half


def test_fold_change_transfer_is_exact_for_a_multiplicative_gene() -> None:
    from celltwin.models._transition._estimate import FoldChange

    transfer, fc, half = _fold_world()
    target = ("C0", "IFN", "")
    additive, multiplicative, _ = transfer.context_parts(target, np.zeros(2))
    assert multiplicative is not None
    # A 3-fold change on the target's own baseline: log1p(3 b) - log1p(b), whatever the sources'.
    base = np.expm1(fc.controls["C0"][0])
    np.testing.assert_allclose(
        multiplicative[:half], np.log1p(3 * base[:half]) - np.log1p(base[:half]), atol=1e-3
    )
    # ...which the log-space transfer (the sources' mean log change) misses at other baselines.
    assert np.abs(additive[:half] - transfer.delta[0][:half]).max() > 0.05
    # Without control cells of the context there is no fold-change half: log-space only.
    bare = FoldChange(fc.pert_linear, fc.control_linear, {}, share=np.ones(6))
    transfer.fold_change = bare
    np.testing.assert_array_equal(transfer.context(target, np.zeros(2)), additive)


def test_fold_share_picks_the_law_each_gene_follows() -> None:
    from celltwin.models._transition._estimate import FoldChange

    transfer, fc, half = _fold_world(n_contexts=5)
    share = transfer.fold_share()
    assert share is not None and share.shape == (6,)
    assert (share[:half] > 0.9).all()  # multiplicative genes: the fold change is exact
    assert (share[half:] < 0.5).all()  # log1p shift: the log-space transfer is exact
    # The blended estimate is the per-gene mix of the two parts.
    transfer.fold_change = FoldChange(fc.pert_linear, fc.control_linear, fc.controls, share)
    target = ("C1", "IFN", "")
    additive, multiplicative, _ = transfer.context_parts(target, np.zeros(2))
    np.testing.assert_allclose(
        transfer.context(target, np.zeros(2)),
        (1 - share) * additive + share * multiplicative,
    )


def test_fold_change_option_is_learned_at_fit_and_validated() -> None:
    sim = simulate(
        n_genes=30, n_tfs=5, contexts=("A", "B", "C"), n_perturbations=3, combinations=0,
        cells_per_condition=20, seed=2,
    )  # fmt: skip
    adata = sim.adata
    adata.obs[SPLIT] = pd.Categorical(np.full(adata.n_obs, TRAIN))
    on = TransitionModel(**TINY).fit(adata)
    off = TransitionModel(**TINY, fold_change=False).fit(adata)
    assert on.fold_share_.shape == (adata.n_vars,)
    assert ((on.fold_share_ >= 0) & (on.fold_share_ <= 1)).all() and on.fold_share_.any()
    assert not off.fold_share_.any()
    assert not hasattr(on, "_fit_controls")  # training cells are not kept in the model
    with pytest.raises(ValueError, match="'fold_change' must be True or False"):
        TransitionModel(**TINY, fold_change="yes").fit(adata)


def test_fold_detail_keeps_the_mean_and_follows_each_cells_expression() -> None:
    from celltwin.models._transition._cells import fold_detail
    from celltwin.models._transition._estimate import Estimate

    rng = np.random.default_rng(3)
    cells = np.log1p(rng.gamma(0.5, 4.0, size=(200, 5)) * (rng.random((200, 5)) > 0.4))
    ratio, share = np.full(5, 0.5), np.array([1.0, 1.0, 0.5, 0.0, 1.0])
    detail = fold_detail(cells, Estimate(np.zeros(5), "context", fold=(ratio, share)))
    np.testing.assert_allclose(detail.mean(axis=0), 0.0, atol=1e-12)
    assert not detail[:, 3].any()  # no share, no spread
    # Halving: cells that do not express a gene are not lowered; the highest are lowered most.
    col = cells[:, 0]
    assert detail[col == 0, 0].max() > detail[col > np.quantile(col, 0.9), 0].max()
    assert not fold_detail(cells, Estimate(np.zeros(5), "context")).any()


def test_control_profile_keeps_the_fold_change_mean() -> None:
    from celltwin.models._transition._estimate import (
        FOLD_LEVELS,
        control_profile,
        fold_change_effect,
    )

    rng = np.random.default_rng(4)
    counts = rng.negative_binomial(1, 0.6, size=(5000, 30)) * (rng.random((5000, 30)) > 0.5)
    cells = np.log1p(counts * 2.5)
    profile = control_profile(cells)
    assert profile.shape == (FOLD_LEVELS, 30)
    ratio = rng.uniform(0.2, 5.0, size=30)
    exact = fold_change_effect(cells, ratio).mean(axis=0)
    # Counts are discrete: the grid misplaces at most 1/(2 levels) of a jump's mass per step.
    np.testing.assert_allclose(fold_change_effect(profile, ratio).mean(axis=0), exact, atol=0.02)
    np.testing.assert_allclose(profile.mean(axis=0), cells.mean(axis=0), atol=0.02)
    few = cells[:50]
    np.testing.assert_array_equal(control_profile(few), few)  # small sets are kept as they are


def test_sparse_gain_keeps_means_and_gains_genes_in_few_cells() -> None:
    from celltwin.models._transition._cells import floor_at_zero, sparse_gain

    rng = np.random.default_rng(5)
    cells = np.log1p(rng.poisson(0.3, size=(400, 6)) * 3.0)
    cells[:, 0] = 0.0  # a gene no control cell expresses
    delta = np.array([0.05, 0.02, 0.5, -0.1, 3.0, 0.0])
    y = floor_at_zero(cells + delta)
    level = np.full(6, 1.5)
    out = sparse_gain(cells, y, level, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out.mean(axis=0), y.mean(axis=0), atol=1e-12)
    # Gene 0: the gain 0.05 per cell becomes ~13 cells at 1.5 (plus one with the rest).
    assert np.count_nonzero(out[:, 0]) == int(0.05 * 400 // 1.5) + 1
    assert set(np.round(out[out[:, 0] > 0, 0], 9)) <= {1.5, round(0.05 * 400 % 1.5, 9)}
    # Cells that expressed a gene keep their values; large gains (gene 4) are left as they are.
    expressed = cells > 0
    np.testing.assert_array_equal(out[expressed], y[expressed])
    np.testing.assert_array_equal(out[:, 4], y[:, 4])
    # Same generator seed, same cells.
    again = sparse_gain(cells, y, level, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)


def _dose_world(noise: float, seed: int = 0):
    """One drug at seven doses in one context: a Hill curve in log dose plus per-dose noise."""
    from celltwin.models._transition._features import Transfer

    rng = np.random.default_rng(seed)
    doses = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
    direction = rng.normal(size=50)
    keys, delta = [], []
    for d in doses:
        hill = d / (d + 0.3)
        keys.append(("A", "drugX", str(d)))
        delta.append(hill * direction + noise * rng.normal(size=50))
    return (
        keys,
        np.vstack(delta),
        Transfer(keys, np.vstack(delta), {"A": np.zeros(2)}, tau=np.inf, features=None, ridge=1.0),
    )


def test_dose_view_weighs_the_other_doses_by_closeness_in_log_dose() -> None:
    from celltwin.models._transition._estimate import dose_weights

    distance = np.array([0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(dose_weights(distance, np.inf), 0.25)
    np.testing.assert_array_equal(dose_weights(distance, 0.0), [1.0, 0.0, 0.0, 0.0])
    w = dose_weights(distance, 0.5)
    assert np.isclose(w.sum(), 1.0) and (np.diff(w) < 0).all()
    # Far doses cannot underflow every weight: the nearest keeps its weight.
    assert np.isclose(dose_weights(np.array([400.0, 401.0]), 0.25)[0], 1.0)

    _, delta, transfer = _dose_world(noise=0.0)
    held = ("A", "drugX", "0.3")
    # The measured dose itself never takes part: the nearest other is 0.1 (0.48 decades; 1.0 is
    # 0.52), and bandwidth 0 takes it alone.
    np.testing.assert_allclose(transfer.dose(held, bandwidth=0.0), delta[2])
    np.testing.assert_allclose(
        transfer.dose(held, bandwidth=np.inf), np.delete(delta, 3, 0).mean(0)
    )
    # Another context or another drug has no doses to borrow from.
    assert transfer.dose(("B", "drugX", "0.3")) is None
    assert transfer.dose(("A", "drugY", "0.3")) is None


def test_dose_bandwidth_follows_the_curve_when_it_is_smooth_and_pools_when_it_is_noise() -> None:
    from celltwin.models._transition._bandwidths import choose_dose_bandwidth

    keys, delta, _ = _dose_world(noise=0.0)
    smooth, losses = choose_dose_bandwidth(keys, delta, {"A": np.zeros(2)})
    assert np.isfinite(smooth) and set(losses) == {"inf", "1.0", "0.5", "0.25", "0.0"}
    assert losses[str(smooth)] < losses["inf"]
    # Effects that do not depend on dose (pure noise around one profile): the mean of all doses.
    rng = np.random.default_rng(3)
    flat = rng.normal(size=50) + 2.0 * rng.normal(size=(7, 50))
    pooled, _ = choose_dose_bandwidth(keys, flat, {"A": np.zeros(2)})
    assert np.isinf(pooled)


def test_transition_predicts_an_unseen_dose_from_the_drugs_other_doses() -> None:
    from celltwin.models._transition._features import Transfer

    keys, delta, _ = _dose_world(noise=0.0)
    train_keys = [k for k in keys if k[2] != "0.3"]
    train_delta = np.vstack([d for k, d in zip(keys, delta, strict=True) if k[2] != "0.3"])
    transfer = Transfer(
        train_keys, train_delta, {"A": np.zeros(2)}, tau=np.inf, features=None, ridge=1.0,
        dose_bandwidth=0.5,
    )  # fmt: skip
    found = transfer.estimate(("A", "drugX", "0.3"), np.zeros(2))
    assert found is not None and found.source == "dose"
    # Closer to the truth than the drug's mean over doses (what a dose-blind model predicts).
    err = np.abs(found.delta - delta[3]).mean()
    assert err < np.abs(train_delta.mean(0) - delta[3]).mean()
    # Views for training: every condition with other doses gets a "dose" example.
    assert sum(v == "dose" for _, v, _ in transfer.views(0)) == len(train_keys)
