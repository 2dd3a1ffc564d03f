"""Ask about any perturbation from the command line (issue 15, first acceptance bullet).

After ``celltwin fit`` on a Papalexi split with default settings and ../shared present: an
unmeasured gene (TP53) is predicted from prior features, a typo is refused as "not a known gene
symbol", a lower-case symbol gets "did you mean STAT1?", a target held out in the validation set
is said to be measured but held out, and --skip-unpredictable predicts the rest and writes the
refusals table. One small model is fitted once for the module (real cells, few of them).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, PREDICTION_SOURCE
from celltwin._settings import shared_dir
from celltwin.cli import app
from celltwin.models import load
from celltwin.split import split_perturbations

SRC = shared_dir() / "data" / "papalexi2021_thp1_subset.h5ad"
pytestmark = pytest.mark.skipif(
    not (SRC.is_file() and (shared_dir() / "priors").is_dir()),
    reason="Papalexi data or priors not found: set CELLTWIN_SHARED to the shared folder",
)

runner = CliRunner()
SMALL = {"n_members": 1, "max_steps": 20, "hidden": 16, "n_latent": 8, "cells": 16, "patience": 2}
SMALL_ARGS = [arg for key, value in SMALL.items() for arg in ("--param", f"{key}={value}")]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """A Papalexi split (40 cells per target, 400 controls; MARCH8 and SPI1 in the validation
    set, as in the issue) and a small ``transition`` fitted on it by ``celltwin fit``."""
    from celltwin.data._papalexi import build_papalexi2021

    adata = build_papalexi2021([SRC])
    rng = np.random.default_rng(0)
    labels = adata.obs[PERTURBATION].astype(str).to_numpy()
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == p), 400 if p == CONTROL else 40, replace=False)
            for p in np.unique(labels)
        ]
    )
    small = adata[np.sort(keep)].copy()
    split_perturbations(small, test=["IRF7", "CAV1"], val=["MARCH8", "SPI1"], seed=0)
    folder = tmp_path_factory.mktemp("any_perturbation")
    data = folder / "split.h5ad"
    small.write_h5ad(data)
    model = folder / "model"
    args = ["fit", str(data), "--out", str(model), "--no-progress", *SMALL_ARGS]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return data, model


def _predict(fitted, tmp_path, conditions: str, *extra: str):
    data, model = fitted
    out = tmp_path / "pred.h5ad"
    args = ["predict", str(model), "--data", str(data), "--out", str(out)]
    return runner.invoke(app, [*args, "--conditions", conditions, *extra]), out


def test_default_fit_uses_the_gene_prior_and_saves_every_gene(fitted) -> None:
    model = load(fitted[1])
    assert model.get_params()["gene_prior"] == "auto"
    assert model.feature_source_ == "go+string"
    # The whole prior is saved, not only the measured genes: TP53 is not among the 299.
    assert "TP53" in model.feature_names_ and "TP53" not in model.genes_
    assert len(model.feature_names_) > 15_000


def test_unmeasured_gene_is_predicted_from_the_prior(fitted, tmp_path) -> None:
    conditions = "THP-1:TP53,THP-1:STAT1,THP-1:IRF7,THP-1:SPI1,THP-1:STAT1+STAT2"
    result, out = _predict(fitted, tmp_path, conditions)
    assert result.exit_code == 0, result.output
    pred = ad.read_h5ad(out)
    sources = pred.obs.drop_duplicates(PERTURBATION).set_index(PERTURBATION)[PREDICTION_SOURCE]
    # IRF7 (test) and SPI1 (validation) were never seen by the model: prior features too.
    assert sources.to_dict() == {
        "TP53": "prior", "STAT1": "measured", "IRF7": "prior", "SPI1": "prior",
        "STAT1+STAT2": "composed",
    }  # fmt: skip
    assert "source: composed 1, measured 1, prior 3" in result.output
    # every answer says how far it is from the training data, and the output lists it
    scores = pred.obs.drop_duplicates(PERTURBATION).set_index(PERTURBATION)["in_domain"]
    assert ((scores >= 0) & (scores <= 1)).all() and scores["STAT1"] == 1.0
    assert scores["TP53"] < 1.0
    tp53 = next(line for line in result.output.splitlines() if " TP53 " in f" {line} ")
    assert "prior" in tp53 and f"{scores['TP53']:.2f}".rstrip("0").rstrip(".") in tp53
    assert np.isfinite(pred.X).all()
    assert not (tmp_path / "pred.refusals.csv").exists()


def test_refusals_name_every_condition_and_reason(fitted, tmp_path) -> None:
    result, out = _predict(fitted, tmp_path, "THP-1:TP53,THP-1:NOTAGENE,THP-1:stat1,THP-1:MARCH8")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "'NOTAGENE' is not a known gene symbol" in text
    assert "THP-1:stat1" in text and "did you mean STAT1?" in text
    # MARCH8 was measured, in the validation set, which the model never saw (the prior files
    # know it only by its new symbol, MARCHF8, so it has no features either).
    assert "THP-1:MARCH8: measured, but held out in the 'val' split" in text
    assert "THP-1:TP53" not in text and "Traceback" not in result.output
    assert not out.exists()


def test_skip_unpredictable_writes_the_refusals_table(fitted, tmp_path) -> None:
    result, out = _predict(
        fitted, tmp_path, "THP-1:TP53,THP-1:NOTAGENE,THP-1:stat1", "--skip-unpredictable"
    )
    assert result.exit_code == 0, result.output
    pred = ad.read_h5ad(out)
    assert set(pred.obs[PERTURBATION].astype(str)) == {"TP53"}
    assert set(pred.obs[CONTEXT].astype(str)) == {"THP-1"}
    table = pd.read_csv(tmp_path / "pred.refusals.csv", keep_default_na=False)
    assert list(table.columns) == [
        "condition", "context", "perturbation", "dose", "reason", "suggestion"
    ]  # fmt: skip
    assert table["condition"].tolist() == ["THP-1:NOTAGENE", "THP-1:stat1"]
    assert "not a known gene symbol" in table["reason"].iloc[0]
    assert table["suggestion"].iloc[1] == "did you mean STAT1?"
    assert "refused 2 conditions" in result.output


def test_a_baseline_gets_the_gene_prior_too(fitted, tmp_path) -> None:
    data, _ = fitted
    model = tmp_path / "linear"
    args = ["fit", str(data), "--out", str(model), "--model", "linear", "--no-progress"]
    result = runner.invoke(app, [*args, "--gene-prior", "go+string"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "pred.h5ad"
    args = ["predict", str(model), "--data", str(data), "--out", str(out)]
    result = runner.invoke(app, [*args, "--conditions", "THP-1:TP53", "--n-cells", "5"])
    assert result.exit_code == 0, result.output
    assert set(ad.read_h5ad(out).obs[PERTURBATION].astype(str)) == {"TP53"}
    bad = runner.invoke(app, ["fit", str(data), "--out", str(tmp_path / "m"), "--model", "mean",
                              "--gene-prior", "go"])  # fmt: skip
    assert bad.exit_code == 2 and "takes no gene features" in bad.output
