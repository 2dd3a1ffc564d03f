"""Saving never replaces an existing model or file unless asked (issue 16: `fit --out` onto an
existing model replaced it silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from celltwin.models import fit, load, predict
from celltwin.simulate import simulate
from celltwin.split import split_contexts


@pytest.fixture(scope="module")
def data():
    adata = simulate(
        n_genes=20,
        n_tfs=4,
        contexts=("A", "B"),
        n_perturbations=3,
        combinations=1,
        cells_per_condition=8,
        seed=4,
    ).adata
    split_contexts(adata, test="B")
    return adata


def test_save_refuses_a_non_empty_folder_and_writes_nothing(data, tmp_path: Path) -> None:
    model = fit(data, model="mean")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"exists and is not empty.*overwrite=True"):
        model.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    model.save(folder, overwrite=True)
    assert load(folder).name == "mean"


def test_fit_refuses_an_existing_model_before_fitting(data, tmp_path: Path) -> None:
    fit(data, model="mean", out=tmp_path / "m")
    before = (tmp_path / "m" / "model.json").read_bytes()
    with pytest.raises(FileExistsError, match="model folder"):
        fit(data, model="control", out=tmp_path / "m")
    assert (tmp_path / "m" / "model.json").read_bytes() == before
    fit(data, model="control", out=tmp_path / "m", overwrite=True)
    assert load(tmp_path / "m").name == "control"


def test_predict_refuses_an_existing_file(data, tmp_path: Path) -> None:
    model = fit(data, model="mean")
    out = tmp_path / "pred.h5ad"
    out.write_text("mine")
    with pytest.raises(FileExistsError, match="prediction file"):
        predict(model, data, out=out)
    assert out.read_text() == "mine"
    predict(model, data, out=out, overwrite=True)
    assert out.stat().st_size > 4
