"""``models.predict_effects``: one effects table for cell, effect and signature models."""

from __future__ import annotations

import numpy as np

from celltwin._keys import CONTEXT, CONTROL, IN_DOMAIN, PERTURBATION, PREDICTION_SOURCE, SPLIT
from celltwin.models import get_model, predict_effects
from celltwin.testing._data import CellData


def _dense(x: object) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _train(data: CellData) -> object:
    return data.adata[data.adata.obs[SPLIT] == "train"].copy()


def test_effect_model_effects_equal_pseudobulk_shift(experiment: CellData) -> None:
    """A baseline's effect is its predicted cells' mean minus the control mean wherever no cell
    was clipped at zero, in the order asked."""
    model = get_model("mean").fit(_train(experiment))
    conditions = [("A", experiment.seen_single), ("B", experiment.held_single), ("A", CONTROL)]
    effects = predict_effects(model, experiment.adata, conditions=conditions)
    assert list(effects.obs[PERTURBATION]) == [c[1] for c in conditions]
    assert list(effects.obs[CONTEXT]) == [c[0] for c in conditions]
    assert np.allclose(effects.X[2], 0.0)
    cells = model.predict(experiment.adata, conditions=conditions[:2])
    adata = experiment.adata
    for i, (context, pert) in enumerate(conditions[:2]):
        sel = (cells.obs[CONTEXT] == context) & (cells.obs[PERTURBATION] == pert)
        ctrl = (adata.obs[CONTEXT] == context) & (adata.obs[PERTURBATION] == CONTROL)
        generated = _dense(cells[sel.to_numpy()].X)
        expected = generated.mean(0) - _dense(adata[ctrl.to_numpy()].X).mean(0)
        unclipped = (generated > 0).all(axis=0)
        assert unclipped.sum() > 10
        np.testing.assert_allclose(effects.X[i][unclipped], expected[unclipped], atol=1e-4)
    assert effects.obs[IN_DOMAIN].isna().all()
    assert np.isnan(effects.layers["lower"]).all()


def test_transition_effects_carry_intervals_and_sources(experiment: CellData) -> None:
    model = get_model(
        "transition", n_members=2, max_steps=40, hidden=16, n_latent=8, cells=16, progress=False
    ).fit(_train(experiment))
    effects = predict_effects(model, experiment.adata, conditions=[("A", experiment.held_single)])
    assert effects.n_obs == 1
    assert np.isfinite(effects.obs[IN_DOMAIN]).all()
    assert effects.obs[PREDICTION_SOURCE].iloc[0] != ""
    assert (effects.layers["lower"] <= effects.layers["upper"]).all()


def test_effect_baselines_need_no_cells(experiment: CellData) -> None:
    model = get_model("mean").fit(_train(experiment))
    conditions = [("A", experiment.seen_single)]
    with_cells = predict_effects(model, experiment.adata, conditions=conditions)
    np.testing.assert_array_equal(
        predict_effects(model, None, conditions=conditions).X, with_cells.X
    )


def test_n_cells_reaches_transition_and_is_ignored_by_baselines(experiment: CellData) -> None:
    model = get_model(
        "transition", n_members=2, max_steps=40, hidden=16, n_latent=8, cells=16, progress=False
    ).fit(_train(experiment))
    conditions = [("A", experiment.held_single)]
    few = predict_effects(model, experiment.adata, conditions=conditions, n_cells=5)
    direct = model.predict_effects(experiment.adata, conditions=conditions, n_cells=5)
    np.testing.assert_array_equal(few.X, direct.X)
    baseline = get_model("mean").fit(_train(experiment))
    np.testing.assert_array_equal(
        predict_effects(baseline, None, conditions=conditions, n_cells=5).X,
        predict_effects(baseline, None, conditions=conditions).X,
    )
