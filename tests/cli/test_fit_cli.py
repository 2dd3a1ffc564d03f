"""``celltwin fit`` and ``celltwin predict``: a split file in, a saved model and predictions out."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST
from celltwin.cli import app
from celltwin.models import conditions_of, fit, load
from celltwin.simulate import simulate
from celltwin.split import split_contexts

runner = CliRunner()

TINY = {"n_members": 2, "max_steps": 30, "hidden": 16, "n_latent": 8, "cells": 16, "patience": 3}
TINY_ARGS = [arg for key, value in TINY.items() for arg in ("--param", f"{key}={value}")]


@pytest.fixture(scope="module")
def split_file(tmp_path_factory) -> Path:
    """Simulated cells of three contexts with context C's perturbed cells held out, on disk."""
    adata = simulate(
        n_genes=30,
        n_tfs=5,
        contexts=("A", "B", "C"),
        n_perturbations=3,
        combinations=1,
        cells_per_condition=10,
        seed=2,
    ).adata
    split_contexts(adata, test="C")
    path = tmp_path_factory.mktemp("cli_fit") / "split.h5ad"
    adata.write_h5ad(path)
    return path


def test_fit_then_predict_writes_the_held_out_conditions(split_file, tmp_path) -> None:
    model_dir, ckpt, pred_file = tmp_path / "model", tmp_path / "ckpt", tmp_path / "pred.h5ad"
    args = ["fit", str(split_file), "--out", str(model_dir), "--seed", "3", "--no-progress"]
    result = runner.invoke(app, [*args, "--checkpoint-dir", str(ckpt), *TINY_ARGS])
    assert result.exit_code == 0, result.output
    assert f"wrote {model_dir}" in result.output
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "checkpoint.json",
        "member_0.safetensors",
        "member_1.safetensors",
    ]
    model = load(model_dir)
    assert model.name == "transition"
    assert {k: model.get_params()[k] for k in TINY} == TINY
    assert model.get_params()["seed"] == 3
    # The command line fits exactly what the Python call fits.
    same = fit(split_file, params=TINY, seed=3, progress=False)
    np.testing.assert_array_equal(model.member_weights_, same.member_weights_)

    result = runner.invoke(
        app, ["predict", str(model_dir), "--data", str(split_file), "--out", str(pred_file)]
    )
    assert result.exit_code == 0, result.output
    pred = ad.read_h5ad(pred_file)
    truth = conditions_of(ad.read_h5ad(split_file), split=TEST)
    counts = pred.obs[[CONTEXT, PERTURBATION]].astype(str).value_counts().to_dict()
    assert counts == truth.set_index([CONTEXT, PERTURBATION])["n_cells"].to_dict()
    assert set(pred.obs[CONTEXT].astype(str)) == {"C"}
    assert f"of {len(truth)} conditions" in result.output
    assert list(pred.var_names) == model.genes_
    assert np.isfinite(pred.X).all()

    # The prediction goes straight into `celltwin evaluate` (it has no control cells: the
    # truth's serve as the predicted control).
    data = ad.read_h5ad(split_file)
    held = (data.obs[SPLIT] == TEST).to_numpy()
    controls = (data.obs[CONTEXT] == "C").to_numpy() & (data.obs[PERTURBATION] == CONTROL)
    truth_file = tmp_path / "truth.h5ad"
    data[held | controls.to_numpy()].copy().write_h5ad(truth_file)
    args = ["evaluate", "--truth", str(truth_file), "--pred", str(pred_file), "--no-ceiling"]
    result = runner.invoke(
        app, [*args, "--metrics", "pearson_delta,mae", "--out", str(tmp_path / "ev")]
    )
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert set(metrics["metric"]) >= {"pearson_delta", "mae"}

    # The split file itself, with --split-key: the same truth, cut by celltwin, the same scores.
    args = ["evaluate", "--truth", str(split_file), "--pred", str(pred_file), "--no-ceiling"]
    args += ["--split-key", SPLIT, "--metrics", "pearson_delta,mae", "--out", str(tmp_path / "ev2")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    cut = pd.read_csv(tmp_path / "ev2" / "metrics.csv")
    key = ["context", "perturbation", "metric"]
    pd.testing.assert_frame_equal(
        metrics.sort_values(key).reset_index(drop=True)[[*key, "value"]],
        cut.sort_values(key).reset_index(drop=True)[[*key, "value"]],
    )


def test_predict_named_conditions_and_a_time_budget(split_file, tmp_path) -> None:
    model_dir, pred_file = tmp_path / "model", tmp_path / "pred.h5ad"
    args = ["fit", str(split_file), "--out", str(model_dir), "--no-progress", *TINY_ARGS]
    slow = ["--param", "max_steps=100000", "--param", "patience=100000"]
    result = runner.invoke(app, [*args, *slow, "--time-budget", "0.5"])
    assert result.exit_code == 0, result.output
    assert {r["stopped"] for r in load(model_dir).training_} == {"time_budget"}

    args = ["predict", str(model_dir), "--data", str(split_file), "--out", str(pred_file)]
    result = runner.invoke(app, [*args, "--conditions", "A:TF01, C:control", "--n-cells", "4"])
    assert result.exit_code == 0, result.output
    pred = ad.read_h5ad(pred_file)
    assert pred.obs[[CONTEXT, PERTURBATION]].astype(str).values.tolist() == (
        [["A", "TF01"]] * 4 + [["C", "control"]] * 4
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "n_member=2"], "has no parameter 'n_member'"),
        (["--param", "n_members"], "KEY=VALUE"),
        (["--model", "mean", "--time-budget", "5"], "takes no time budget"),
        (["--split-key", "fold"], "no split column 'fold'"),
    ],
)
def test_fit_errors_are_one_clear_line(split_file, tmp_path, args, message) -> None:
    result = runner.invoke(app, ["fit", str(split_file), "--out", str(tmp_path / "m"), *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a raised error


def test_predict_errors_are_one_clear_line(split_file, tmp_path) -> None:
    unsplit = ad.read_h5ad(split_file)
    del unsplit.obs[SPLIT]
    unsplit.write_h5ad(tmp_path / "unsplit.h5ad")
    fitted = runner.invoke(
        app, ["fit", str(split_file), "--out", str(tmp_path / "m"), "--model", "mean"]
    )
    assert fitted.exit_code == 0, fitted.output
    for args, message in [
        (["--data", str(tmp_path / "unsplit.h5ad")], "no split column 'split'"),
        (["--data", str(split_file), "--conditions", "C-TF01"], "context:perturbation"),
        (["--data", str(split_file), "--split", "val"], "labels present"),
    ]:
        result = runner.invoke(
            app, ["predict", str(tmp_path / "m"), *args, "--out", str(tmp_path / "p.h5ad")]
        )
        assert result.exit_code == 2, result.output
        assert message in result.output and isinstance(result.exception, SystemExit)
