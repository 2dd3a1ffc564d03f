"""``transition``: determinism, persistence, unseen contexts from controls, combinations,
interactions against ``additive``, intervals, checkpoints and the time budget (tiny configs)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltwin._keys import (
    CONTEXT,
    CONTROL,
    PERTURBATION,
    PERTURBATION_TYPE,
    PREDICTION_SOURCE,
    SPLIT,
    TEST,
    TRAIN,
)
from celltwin.models import UnseenConditionError, get_model
from celltwin.models import _registry as registry
from celltwin.models._transition import TransitionModel
from celltwin.simulate import simulate

TINY = dict(n_members=2, max_steps=40, hidden=16, n_latent=8, cells=16, patience=3, progress=False)


def tiny(**params) -> TransitionModel:
    return TransitionModel(**{**TINY, **params})


@pytest.fixture(scope="module")
def fitted(experiment) -> TransitionModel:
    return tiny().fit(experiment.adata)


def _seen(experiment) -> list[tuple[str, str]]:
    return [("A", experiment.seen_single), ("B", experiment.seen_combo), ("C", "control")]


def _effect_rows(pred: ad.AnnData) -> np.ndarray:
    return np.asarray(pred.X, dtype=np.float64)


# --- determinism and persistence ------------------------------------------------------------


def test_same_seed_gives_the_same_model_and_predictions(experiment, fitted) -> None:
    again = tiny().fit(experiment.adata)
    np.testing.assert_array_equal(again.member_weights_, fitted.member_weights_)
    conditions = [("C", experiment.seen_single), ("A", experiment.held_combo)]
    a = fitted.predict(experiment.adata, conditions=conditions, n_cells=9, seed=4)
    b = again.predict(experiment.adata, conditions=conditions, n_cells=9, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    other = tiny(seed=1).fit(experiment.adata)
    assert not np.array_equal(other.member_weights_, fitted.member_weights_)
    # The network was trained (not left at its zero start) and its correction is used.
    assert np.abs(fitted.member_weights_).sum() > 0
    assert {"context", "combination"} <= set(fitted.trained_views_)


def test_save_load_gives_identical_predictions(experiment, fitted, tmp_path, monkeypatch) -> None:
    if "transition" not in registry.MODELS:  # until the registry lists it
        spec = registry.ModelSpec(
            name="transition",
            cls=TransitionModel,
            description="hybrid",
            reference="celltwin",
            predicts="cells",
            handles_unseen=frozenset({"perturbation", "context", "combination"}),
        )
        monkeypatch.setitem(registry.MODELS, "transition", spec)
    fitted.save(tmp_path / "model")
    loaded = TransitionModel.load(tmp_path / "model")
    conditions = [("C", experiment.seen_single), ("A", experiment.held_combo)]
    np.testing.assert_array_equal(
        loaded.predict(experiment.adata, conditions=conditions, seed=2).X,
        fitted.predict(experiment.adata, conditions=conditions, seed=2).X,
    )
    a = loaded.predict_effects(experiment.adata, conditions=conditions)
    b = fitted.predict_effects(experiment.adata, conditions=conditions)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.layers["upper"], b.layers["upper"])
    assert loaded.training_ == fitted.training_


# --- unseen contexts, combinations, perturbations ------------------------------------------


def _grouped_contexts(seed: int = 0) -> tuple[ad.AnnData, np.ndarray, np.ndarray, np.ndarray]:
    """Contexts in two families (x1-x3, y1-y3) with distinct control states and responses.

    Returns the cells (training: x1, x2, y1, y2 perturbed; x3 and y3 controls only), the
    responses of the two families, and a baseline for a brand-new x-like context.
    """
    rng = np.random.default_rng(seed)
    n_genes = 30
    base_x, base_y = rng.uniform(2, 4, n_genes), rng.uniform(2, 4, n_genes)
    effect_x = np.zeros(n_genes)
    effect_y = np.zeros(n_genes)
    effect_x[:8], effect_y[8:16] = 1.5, 1.5
    blocks, rows = [], []
    for name in ("x1", "x2", "x3", "y1", "y2", "y3"):
        base = (base_x if name[0] == "x" else base_y) + rng.normal(0, 0.05, n_genes)
        effect = effect_x if name[0] == "x" else effect_y
        groups = [(CONTROL, 0.0)] + ([("STIM", 1.0)] if name[1] != "3" else [])
        for pert, on in groups:
            blocks.append(np.maximum(base + on * effect + rng.normal(0, 0.3, (40, n_genes)), 0))
            rows += [(name, pert)] * 40
    obs = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION])
    obs[PERTURBATION_TYPE] = np.where(obs[PERTURBATION] == CONTROL, "control", "cytokine")
    obs.index = [f"c{i}" for i in range(len(obs))]
    genes = [f"g{i}" for i in range(n_genes)]
    adata = ad.AnnData(np.vstack(blocks).astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))
    return adata, effect_x, effect_y, base_x


def test_generated_mean_is_all_controls_mean_plus_the_effect(experiment, fitted) -> None:
    # A draw of 9 controls has a mean of its own; the generated cells are shifted so that
    # their mean is every control's mean plus the predicted change (here a measured one, which
    # the network leaves alone), so the draw adds no noise to the predicted mean.
    adata = experiment.adata
    key = ("A", experiment.seen_single)
    pred = fitted.predict(adata, conditions=[key], n_cells=9, seed=2)
    effect = _effect_rows(fitted.predict_effects(adata, conditions=[key]))[0]
    obs = adata.obs
    x = adata[(obs[CONTEXT] == "A").to_numpy() & (obs[PERTURBATION] == CONTROL).to_numpy()].X
    controls = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    base = controls.mean(axis=0)
    got = np.asarray(pred.X, dtype=np.float64).mean(axis=0)
    np.testing.assert_allclose(got, np.maximum(base + effect, 0.0), atol=1e-5)
    # Without the shift the draw's own mean would be off by far more than that.
    draw = np.random.default_rng(2).choice(len(controls), 9, replace=True)
    assert np.abs(controls[draw].mean(axis=0) - base).max() > 1e-2


def test_unseen_context_is_predicted_from_its_controls_alone() -> None:
    adata, effect_x, effect_y, base_x = _grouped_contexts()
    model = tiny(n_members=1, max_steps=20).fit(adata)
    shift = get_model("context_shift").fit(adata)
    # A context never seen in training at all: only its control cells, in the query.
    rng = np.random.default_rng(5)
    new = np.maximum(base_x + rng.normal(0, 0.3, (40, len(base_x))), 0).astype(np.float32)
    query = ad.AnnData(
        new,
        obs=pd.DataFrame(
            {CONTEXT: "new", PERTURBATION: CONTROL}, index=[f"n{i}" for i in range(40)]
        ),
        var=pd.DataFrame(index=adata.var_names),
    )
    for context, data, truth in (
        ("x3", adata, effect_x),
        ("y3", adata, effect_y),
        ("new", query, effect_x),
    ):
        eff = model.predict_effects(data, conditions=[(context, "STIM")])
        assert eff.obs["source"].tolist() == ["context"]
        pred = _effect_rows(eff)[0]
        cs_cells = shift.predict(data, conditions=[(context, "STIM")]).X
        ctrl = np.asarray(
            data.X[
                (data.obs[CONTEXT] == context).to_numpy()
                & (data.obs[PERTURBATION] == CONTROL).to_numpy()
            ]
        )
        cs = cs_cells.mean(axis=0) - ctrl.mean(axis=0)
        # The controls tell which family the context belongs to; context_shift averages both.
        assert np.mean((pred - truth) ** 2) < 0.25 * np.mean((cs - truth) ** 2)
    assert model.tau_ > 0  # a finite bandwidth was chosen on the training contexts


def _single_effects(n_genes: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {p: rng.normal(0, 0.6, n_genes) * (rng.random(n_genes) < 0.4) for p in ("P", "Q", "R")}


def test_an_unseen_combination_is_composed_from_its_parts(make_cells) -> None:
    n_genes = 20
    singles = _single_effects(n_genes)
    effects = {(c, p, ""): e for c in ("A", "B") for p, e in singles.items()}
    adata = make_cells(effects, n_genes=n_genes, n_cells=30, noise=0.1)
    model = tiny(n_members=1).fit(adata)
    eff = model.predict_effects(adata, conditions=[("A", "P+Q"), ("B", "P+Q+R")])
    assert eff.obs["source"].tolist() == ["combination", "combination"]
    # No combination was trained: the composition is the sum of the measured parts (additive).
    additive = get_model("additive").fit(adata)
    for i, (context, label) in enumerate([("A", "P+Q"), ("B", "P+Q+R")]):
        cells = additive.predict(adata, conditions=[(context, label)]).X
        ctrl = np.asarray(
            adata.X[
                (adata.obs[CONTEXT] == context).to_numpy()
                & (adata.obs[PERTURBATION] == CONTROL).to_numpy()
            ]
        )
        np.testing.assert_allclose(_effect_rows(eff)[i], cells.mean(0) - ctrl.mean(0), atol=1e-5)


def _interaction_task(seed: int) -> tuple[ad.AnnData, list[tuple[str, str]], np.ndarray]:
    sim = simulate(
        n_genes=60,
        n_tfs=10,
        contexts=("A", "B"),
        n_perturbations=8,
        combinations=10,
        cells_per_condition=40,
        seed=seed,
    )
    adata = sim.adata
    pert = adata.obs[PERTURBATION].astype(str).to_numpy()
    held = sorted({p for p in pert if "+" in p})[:3]
    adata.obs[SPLIT] = pd.Categorical(np.where(np.isin(pert, held), TEST, TRAIN))
    conditions = [(c, p) for c in ("A", "B") for p in held]
    truth = np.asarray(sim.effects[[f"{c}|{p}|" for c, p in conditions]].X)
    assert np.abs(np.asarray(sim.interactions.X)).mean() > 0.005  # the task has interactions
    return adata, conditions, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_unseen_combinations_beat_additive_on_simulated_interactions(seed: int) -> None:
    adata, conditions, truth = _interaction_task(seed)
    model = tiny(n_members=2, max_steps=60, hidden=32, n_latent=16).fit(adata)
    eff = model.predict_effects(adata, conditions=conditions)
    assert set(eff.obs["source"]) == {"combination"}
    additive = get_model("additive").fit(adata)
    ctx = adata.obs[CONTEXT].astype(str).to_numpy()
    ctl = adata.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    add = np.vstack(
        [
            additive.predict(adata, conditions=[c]).X.mean(0)
            - np.asarray(adata.X[(ctx == c[0]) & ctl].mean(0)).ravel()
            for c in conditions
        ]
    )
    mse = np.mean((_effect_rows(eff) - truth) ** 2)
    mse_additive = np.mean((add - truth) ** 2)
    assert mse < 0.8 * mse_additive


def test_unseen_perturbation_needs_features(experiment) -> None:
    adata = experiment.adata
    query = [("A", experiment.held_single)]
    with pytest.raises(UnseenConditionError, match="no features for"):
        tiny(n_members=1, gene_prior="none").fit(adata).predict(adata, conditions=query)
    model = tiny(n_members=1).fit(adata)  # gene_prior="data": gene loadings of the targets
    effects = model.predict_effects(adata, conditions=query)
    assert effects.obs["source"].tolist() == ["features"]
    # Simulated gene names: 'auto' falls back to features from the data, and says so.
    assert model.feature_source_ == "data"
    assert effects.obs[PREDICTION_SOURCE].tolist() == ["features"]
    # External features (one row per component) work the same way, whatever the source.
    names = sorted({experiment.held_single, *model.components_})
    features = pd.DataFrame(np.random.default_rng(0).normal(size=(len(names), 4)), index=names)
    external = tiny(n_members=1).fit(adata, perturbation_features=features)
    assert external.feature_source_ == "external"
    assert np.isfinite(external.predict(adata, conditions=query).X).all()


# --- uncertainty -----------------------------------------------------------------------------


def test_effect_intervals(experiment, fitted) -> None:
    conditions = [
        ("C", experiment.seen_single),
        ("A", experiment.held_combo),
        ("A", experiment.seen_single),
        ("B", CONTROL),
    ]
    eff = fitted.predict_effects(experiment.adata, conditions=conditions)
    assert eff.obs["source"].tolist() == ["context", "combination", "own", "control"]
    x, lo, hi = eff.X, eff.layers["lower"], eff.layers["upper"]
    assert np.all(lo[:2] <= x[:2]) and np.all(x[:2] <= hi[:2])
    assert np.all(hi[:2] - lo[:2] > 0)
    assert np.isnan(lo[2]).all() and np.isnan(hi[2]).all()  # measured: returned as measured
    assert np.all(x[3] == 0) and np.all(lo[3] == 0)
    assert fitted.calibration_ > 0
    # Held-out truth (C's perturbed cells are test cells) is covered near the nominal 90 %.
    adata = experiment.adata
    ctx, pert = adata.obs[CONTEXT].to_numpy(), adata.obs[PERTURBATION].astype(str).to_numpy()
    truth = np.asarray(
        adata.X[(ctx == "C") & (pert == experiment.seen_single)].mean(0)
        - adata.X[(ctx == "C") & (pert == CONTROL)].mean(0)
    ).ravel()
    coverage = np.mean((truth >= lo[0]) & (truth <= hi[0]))
    assert coverage >= 0.6


# --- training as a tool -------------------------------------------------------------------------


def test_checkpoints_resume_to_the_same_model(experiment, fitted, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    first = tiny().fit(experiment.adata, checkpoint_dir=folder)
    np.testing.assert_array_equal(first.member_weights_, fitted.member_weights_)
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.json",
        "member_0.safetensors",
        "member_1.safetensors",
    ]
    (folder / "member_1.safetensors").unlink()  # as if interrupted during member 2
    resumed = tiny().fit(experiment.adata, checkpoint_dir=folder)
    np.testing.assert_array_equal(resumed.member_weights_, fitted.member_weights_)
    # Other parameters: the checkpoint does not match and is not used.
    changed = tiny(seed=1).fit(experiment.adata, checkpoint_dir=folder)
    np.testing.assert_array_equal(
        changed.member_weights_, tiny(seed=1).fit(experiment.adata).member_weights_
    )


def test_time_budget_stops_training(experiment) -> None:
    model = tiny(max_steps=100_000, patience=100_000, time_budget=0.5).fit(experiment.adata)
    assert {m["stopped"] for m in model.training_} == {"time_budget"}
    pred = model.predict(experiment.adata, conditions=_seen(experiment))
    assert np.isfinite(pred.X).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_members": 0}, "'n_members' must be an integer >= 1"),
        ({"interval": 1.5}, "'interval' must be in"),
        ({"device": "tpu"}, "'device' must be"),
        ({"gene_prior": "kegg"}, "'gene_prior' must be"),
        ({"time_budget": -1}, "'time_budget' must be > 0"),
        ({"fold_change": "yes"}, "'fold_change' must be True or False"),
        ({"cell_states": 1}, "'cell_states' must be True or False"),
    ],
)
def test_invalid_parameters_are_refused(experiment, params, message) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(**params).fit(experiment.adata)
