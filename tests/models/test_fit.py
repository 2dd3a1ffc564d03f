"""``celltwin.models.fit`` / ``predict``: training that behaves like a tool.

Seeded and reproducible, a time budget that is kept, checkpoints that resume to the result of an
uninterrupted fit, early stopping validated on training data only (held-out cells may hold
anything), and clear refusals. Tiny ``transition`` settings on simulated data split by context.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN
from celltwin.models import TransitionModel, conditions_of, fit, load, predict
from celltwin.models._transition import _ensemble
from celltwin.simulate import simulate
from celltwin.split import split_contexts

TINY = {"n_members": 2, "max_steps": 40, "hidden": 16, "n_latent": 8, "cells": 16, "patience": 3}


@pytest.fixture(scope="module")
def data() -> AnnData:
    """Four contexts; every perturbed cell of ``D`` is held out (controls stay in training)."""
    adata = simulate(
        n_genes=40,
        n_tfs=6,
        contexts=("A", "B", "C", "D"),
        n_perturbations=4,
        combinations=1,
        cells_per_condition=12,
        seed=0,
    ).adata
    split_contexts(adata, test="D")
    return adata


@pytest.fixture(scope="module")
def straight(data) -> TransitionModel:
    """An uninterrupted fit, the reference of the reproducibility and resume tests."""
    model = fit(data, params=TINY, seed=0, progress=False)
    assert isinstance(model, TransitionModel)
    return model


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _held_out(adata: AnnData, *, value: str) -> AnnData:
    """A dense copy whose non-training cells hold NaN or garbage in log range."""
    out = adata.copy()
    x = out.X.toarray() if hasattr(out.X, "toarray") else np.array(out.X)
    held = out.obs[SPLIT].astype(str).to_numpy() != TRAIN
    rng = np.random.default_rng(1)
    x[held] = np.nan if value == "nan" else rng.uniform(0.0, 9.0, size=(held.sum(), x.shape[1]))
    out.X = x.astype(np.float32)
    return out


# --- reproducibility --------------------------------------------------------------------------


def test_same_seed_saves_identical_files_and_another_seed_differs(data, straight, tmp_path) -> None:
    fit(data, params=TINY, seed=0, progress=False, out=tmp_path / "a")
    fit(data, params=TINY, seed=0, progress=False, out=tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(a) == {"model.json", "weights.safetensors"}
    assert a == b  # byte for byte: weights, checksum, parameters, training records
    loaded = load(tmp_path / "a")
    np.testing.assert_array_equal(loaded.member_weights_, straight.member_weights_)
    assert loaded.get_params()["seed"] == 0

    fit(data, params=TINY, seed=1, progress=False, out=tmp_path / "c")
    other = load(tmp_path / "c")
    assert other.get_params()["seed"] == 1
    assert other.member_weights_.shape == straight.member_weights_.shape
    assert not np.allclose(other.member_weights_, straight.member_weights_)


# --- time budget ------------------------------------------------------------------------------


def test_time_budget_is_kept_and_the_model_still_predicts(data) -> None:
    budget = 1.0
    # Without the budget this would run 2 x 100,000 steps (minutes).
    params = {**TINY, "max_steps": 100_000, "patience": 100_000}
    start = time.monotonic()
    model = fit(data, params=params, time_budget=budget, progress=False)
    elapsed = time.monotonic() - start
    assert {r["stopped"] for r in model.training_} == {"time_budget"}
    # Slack: the classical estimates before training and the calibration after it.
    assert elapsed < budget + 5.0, elapsed
    pred = predict(model, data)
    truth = conditions_of(data, split=TEST)
    assert pred.n_obs == int(truth["n_cells"].sum())
    assert np.isfinite(np.asarray(pred.X)).all()


# --- checkpoints ------------------------------------------------------------------------------


class _Interrupt(Exception):
    """Stands in for Ctrl-C or a killed job in the middle of the ensemble."""


def _counting_train_member(monkeypatch, *, fail_at: int | None = None) -> list[int]:
    calls: list[int] = []
    real = _ensemble.train_member

    def wrapped(*args, **kwargs):
        calls.append(1)
        if fail_at is not None and len(calls) == fail_at:
            raise _Interrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_ensemble, "train_member", wrapped)
    return calls


def test_an_interrupted_fit_resumes_to_the_uninterrupted_model(
    data, straight, tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "ckpt"
    calls = _counting_train_member(monkeypatch, fail_at=2)
    with pytest.raises(_Interrupt):
        fit(data, params=TINY, progress=False, checkpoint_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.json", "member_0.safetensors"]

    calls = _counting_train_member(monkeypatch)
    resumed = fit(data, params=TINY, progress=False, checkpoint_dir=folder)
    assert len(calls) == 1  # member 0 came from the checkpoint, only member 1 was trained
    np.testing.assert_array_equal(resumed.member_weights_, straight.member_weights_)
    assert resumed.training_ == straight.training_
    assert resumed.calibration_ == straight.calibration_

    calls = _counting_train_member(monkeypatch)
    again = fit(data, params=TINY, progress=False, checkpoint_dir=folder)
    assert len(calls) == 0  # every member finished: nothing is trained again
    np.testing.assert_array_equal(again.member_weights_, straight.member_weights_)


def test_members_cut_by_the_time_budget_are_not_resumed_as_finished(
    data, straight, tmp_path
) -> None:
    folder = tmp_path / "ckpt"
    cut = fit(data, params=TINY, time_budget=0.01, progress=False, checkpoint_dir=folder)
    assert {r["stopped"] for r in cut.training_} == {"time_budget"}
    assert not list(folder.glob("member_*.safetensors"))
    resumed = fit(data, params=TINY, progress=False, checkpoint_dir=folder)
    np.testing.assert_array_equal(resumed.member_weights_, straight.member_weights_)


# --- leakage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "garbage"])
def test_held_out_cells_never_reach_the_fit_or_its_early_stopping(data, straight, value) -> None:
    dirty = _held_out(data, value=value)
    model = fit(dirty, params=TINY, seed=0, progress=False)
    for name in model._array_names():
        np.testing.assert_array_equal(getattr(model, name), getattr(straight, name), err_msg=name)
    assert model.training_ == straight.training_
    # Early stopping was validated on training conditions only, never on held-out ones.
    train_keys = {
        f"{c}|{p}|{d}"
        for c, p, d in conditions_of(data, split=TRAIN)[[CONTEXT, PERTURBATION, "dose"]].values
    }
    validated = {key for record in model.training_ for key in record["validation"]}
    assert validated and validated <= train_keys
    assert not any(key.startswith("D|") for key in validated)
    # The held-out conditions are predicted the same from the poisoned file as from the clean.
    clean, poisoned = predict(straight, data, seed=3), predict(model, dirty, seed=3)
    np.testing.assert_array_equal(clean.X, poisoned.X)
    pd.testing.assert_frame_equal(clean.obs, poisoned.obs)


# --- predict ----------------------------------------------------------------------------------


def test_predict_defaults_to_the_held_out_conditions(data, straight, tmp_path) -> None:
    straight.save(tmp_path / "model")
    pred = predict(tmp_path / "model", data, out=tmp_path / "pred.h5ad")
    truth = conditions_of(data, split=TEST)
    counts = pred.obs[[CONTEXT, PERTURBATION]].astype(str).value_counts()
    expected = truth.set_index([CONTEXT, PERTURBATION])["n_cells"]
    assert counts.to_dict() == expected.to_dict()
    assert len(expected) == 5  # the four singles and the combination of context D
    assert list(pred.var_names) == straight.genes_
    assert (tmp_path / "pred.h5ad").is_file()
    # From the saved model and from the one in memory: the same cells.
    np.testing.assert_array_equal(pred.X, predict(straight, data).X)


def test_predict_takes_conditions_as_text(data, straight) -> None:
    pert = sorted(set(data.obs[PERTURBATION].astype(str)) - {CONTROL})[0]
    pred = predict(straight, data, conditions=[f"D:{pert}", "A:control"], n_cells=5)
    assert pred.obs[[CONTEXT, PERTURBATION]].drop_duplicates().values.tolist() == [
        ["D", pert],
        ["A", CONTROL],
    ]
    assert pred.n_obs == 10


def test_other_models_fit_through_the_same_call(data) -> None:
    model = fit(data, model="mean", seed=5)
    assert model.name == "mean"
    assert model.n_train_cells_ == int((data.obs[SPLIT] == TRAIN).sum())


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"params": {"n_member": 2}}, ValueError, "has no parameter 'n_member'.*n_members"),
        ({"params": {"seed": 2}}, ValueError, "pass seed=... to fit"),
        ({"model": "mean", "time_budget": 5}, ValueError, "'mean' takes no time budget"),
        ({"model": "mean", "checkpoint_dir": "x"}, ValueError, "'mean' writes no checkpoints"),
        ({"time_budget": 0}, ValueError, "time_budget must be > 0"),
        ({"model": "nope"}, KeyError, "no model named 'nope'"),
        ({"split_key": "fold"}, KeyError, "no split column 'fold'"),
    ],
)
def test_fit_refuses_clearly(data, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        fit(data, progress=False, **kwargs)


def test_predict_refuses_clearly(data, straight, tmp_path) -> None:
    unsplit = data.copy()
    del unsplit.obs[SPLIT]
    with pytest.raises(KeyError, match=r"no split column 'split'.*celltwin split"):
        predict(straight, unsplit)
    with pytest.raises(ValueError, match=r"obs\['split'\] == 'val'.*labels present"):
        predict(straight, data, split="val")
    with pytest.raises(ValueError, match="context:perturbation"):
        predict(straight, data, conditions=["D-TF01"])
    with pytest.raises(ValueError, match=r"must be an \.h5ad file"):
        predict(straight, data, out=tmp_path / "pred.csv")
    with pytest.raises(FileNotFoundError, match="no model directory"):
        predict(tmp_path / "missing", data)
