"""Drugs by structure from a library file, at fit and at predict time; sources and refusals
through :func:`celltwin.models.fit` / :func:`celltwin.models.predict` (issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from celltwin._keys import DRUG, PERTURBATION, PERTURBATION_TYPE, PREDICTION_SOURCE, UNS_KEY
from celltwin.models import UnpredictableConditionsError, fit, predict, refusals_path
from celltwin.simulate import simulate
from celltwin.split import split_perturbations

pytest.importorskip("rdkit")

SMILES = {
    "aspirin": "CC(=O)OC1=CC=CC=C1C(=O)O",
    "caffeine": "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "ibuprofen": "CC(C)CC1=CC=C(C=C1)C(C)C(=O)O",
    "paracetamol": "CC(=O)NC1=CC=C(O)C=C1",
}
TINY = {"n_members": 1, "max_steps": 20, "hidden": 16, "n_latent": 8, "cells": 16, "patience": 2}


@pytest.fixture(scope="module")
def drugs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Simulated cells of four drugs in one context, paracetamol held out; a library with all
    four and one without paracetamol (headerless name,SMILES CSVs)."""
    adata = simulate(
        n_genes=30, n_tfs=5, contexts=("A",), n_perturbations=4, combinations=0, seed=1
    ).adata
    names = sorted(set(adata.obs[PERTURBATION].astype(str)) - {"control"})
    rename = dict(zip(names, SMILES, strict=True))
    adata.obs[PERTURBATION] = adata.obs[PERTURBATION].astype(str).replace(rename)
    is_drug = adata.obs[PERTURBATION] != "control"
    adata.obs[PERTURBATION_TYPE] = np.where(is_drug, DRUG, "control")
    split_perturbations(adata, test=["paracetamol"], seed=0)
    folder = tmp_path_factory.mktemp("drugs")
    data = folder / "split.h5ad"
    adata.write_h5ad(data)
    full, partial = folder / "all.csv", folder / "three.csv"
    full.write_text("".join(f"{k},{v}\n" for k, v in SMILES.items()))
    partial.write_text("".join(f"{k},{v}\n" for k, v in SMILES.items() if k != "paracetamol"))
    return data, full, partial


def test_an_unmeasured_drug_is_predicted_from_its_structure(drugs, tmp_path) -> None:
    data, full, _ = drugs
    model = fit(data, params=TINY, drugs=full, progress=False)
    assert model.feature_source_ == "external"
    assert set(SMILES) <= set(model.feature_names_)
    pred = predict(model, data, conditions=["A:paracetamol", "A:aspirin"], n_cells=5)
    sources = pred.obs.drop_duplicates(PERTURBATION).set_index(PERTURBATION)[PREDICTION_SOURCE]
    assert sources.to_dict() == {"paracetamol": "prior", "aspirin": "measured"}
    assert len(pred.uns[UNS_KEY]["refusals"]) == 0


def test_a_drug_library_given_at_predict_time(drugs, tmp_path) -> None:
    data, full, partial = drugs
    model = fit(data, params=TINY, drugs=partial, progress=False)
    with pytest.raises(UnpredictableConditionsError, match="give its SMILES") as err:
        predict(model, data, conditions=["A:paracetamol"])
    # Held out in the split's test set: the data says it was measured.
    assert "held out in the 'test' split" in err.value.refusals["reason"].iloc[0]
    pred = predict(model, data, conditions=["A:paracetamol"], n_cells=5, drugs=full)
    assert pred.obs[PREDICTION_SOURCE].unique().tolist() == ["prior"]


def test_skip_unpredictable_in_python(drugs, tmp_path) -> None:
    data, _, partial = drugs
    model = fit(data, params=TINY, drugs=partial, progress=False)
    out = tmp_path / "pred.h5ad"
    pred = predict(
        model, data, conditions=["A:paracetamol", "A:caffeine"], n_cells=3, out=out,
        skip_unpredictable=True,
    )  # fmt: skip
    assert set(pred.obs[PERTURBATION]) == {"caffeine"}
    refusals = pred.uns[UNS_KEY]["refusals"]
    assert refusals["condition"].tolist() == ["A:paracetamol"]
    assert refusals_path(out) == tmp_path / "pred.refusals.csv" and refusals_path(out).is_file()
    with pytest.raises(UnpredictableConditionsError, match="none of the requested"):
        predict(model, data, conditions=["A:paracetamol"], skip_unpredictable=True)


def test_wide_feature_ridge_is_the_primal_solution() -> None:
    """Fingerprint-wide features are solved in the dual form: the same coefficients."""
    from celltwin.models._transition._estimate import ComponentFeatures
    from celltwin.models._transition._features import Transfer

    rng = np.random.default_rng(0)
    names = [f"d{i}" for i in range(6)]
    matrix = (rng.random((6, 1500)) < 0.05).astype(float)  # 3,000 feature columns
    keys = [("A", n, "") for n in names]
    delta = rng.normal(size=(6, 7))
    transfer = Transfer(
        keys, delta, {"A": np.zeros(3)}, tau=np.inf,
        features=ComponentFeatures(names, matrix), ridge=0.5,
    )  # fmt: skip
    f = np.vstack([transfer.features.vector(n, "") for n in names])
    y = delta - delta.mean(axis=0)
    primal = np.linalg.solve(f.T @ f + 0.5 * np.eye(f.shape[1]), f.T @ y)
    np.testing.assert_allclose(transfer._fit_ridge(range(6)), primal, atol=1e-8)
