"""lincs-doses: the folds hide what they claim, and the fold results have the suite's shape."""

from __future__ import annotations

import numpy as np
import pytest

from celltwin._settings import shared_dir
from celltwin.benchmark import get_suite

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def lincs():
    if not (shared_dir() / "data" / "lincs" / "lincs_ljp005_a375_doses.h5ad").is_file():
        pytest.skip(f"the shared LINCS plate is not under {shared_dir()} (set CELLTWIN_SHARED)")
    from celltwin.benchmark._suites import _lincs

    return _lincs


def _doses(obs, drug):
    return sorted(obs.loc[obs["perturbation"] == drug, "dose"].astype(float))


def test_interpolation_folds_hide_one_intermediate_dose_per_drug_each_once(lincs) -> None:
    adata = lincs.plate()
    obs = adata.obs
    seen = set()
    for fold in lincs.lincs_folds("interpolation"):
        hidden = lincs.held_out(adata, fold)
        train, test = obs.loc[~hidden], obs.loc[hidden]
        assert test["perturbation"].is_unique  # one dose per drug
        for drug, dose in zip(test["perturbation"], test["dose"], strict=True):
            doses = _doses(obs, drug)
            assert doses[0] < dose < doses[-1]  # intermediate: bracketed by training doses
            train_doses = _doses(train, drug)
            assert dose not in train_doses and len(train_doses) == len(doses) - 1
            assert (drug, dose) not in seen
            seen.add((drug, dose))
    six = [d for d in obs["perturbation"].unique() if len(_doses(obs, d)) == 6]
    assert len(seen) == 4 * len(six)


def test_extrapolation_hides_every_drugs_highest_dose(lincs) -> None:
    adata = lincs.plate()
    obs = adata.obs
    hidden = lincs.held_out(adata, "extrapolation")
    train = obs.loc[~hidden]
    for drug in obs["perturbation"].unique():
        assert max(_doses(train, drug)) < max(_doses(obs, drug))
        assert _doses(obs.loc[hidden], drug) == [max(_doses(obs, drug))]


def test_new_drug_folds_hide_all_doses_of_their_drugs_and_partition_the_featured(lincs) -> None:
    adata = lincs.plate()
    obs = adata.obs
    featured = set(lincs.drug_features().index)
    assert len(featured) >= 40  # Broad ids matched to SMILES
    covered: list[str] = []
    for fold in lincs.lincs_folds("new_drug"):
        hidden = lincs.held_out(adata, fold)
        drugs = set(obs.loc[hidden, "perturbation"])
        assert not drugs & set(obs.loc[~hidden, "perturbation"])  # no dose of them trains
        assert drugs <= featured
        covered += sorted(drugs)
    assert sorted(covered) == sorted(featured)


@pytest.mark.slow  # ~1 min; the fold tests above check the hidden wells fast
def test_poisoned_hidden_wells_change_no_prediction(lincs) -> None:
    adata = lincs.plate()
    for fold in ("interpolation/fold0", "extrapolation", "new_drug/fold0"):
        hidden = lincs.held_out(adata, fold)
        dirty = adata.copy()
        dirty.X = np.asarray(dirty.X).copy()
        dirty.X[hidden] = np.random.default_rng(0).normal(size=dirty.X[hidden].shape) * 100
        models = list(lincs.DOSE_MODELS)
        clean = lincs.lincs_predictions(adata, fold, models=models)
        poisoned = lincs.lincs_predictions(dirty, fold, models=models)
        for name in models:
            if clean[name] is None:
                assert poisoned[name] is None
                continue
            np.testing.assert_array_equal(clean[name], poisoned[name], err_msg=f"{fold} {name}")


def test_suite_is_registered_with_signature_metrics_and_all_folds(lincs) -> None:
    suite = get_suite("lincs-doses")
    assert suite.metrics[0] == "spearman" and "NOT log-expression" in suite.description
    assert suite.folds() == [
        *(f"interpolation/fold{k}" for k in range(4)),
        "extrapolation",
        *(f"new_drug/fold{k}" for k in range(5)),
    ]
    assert suite.folds(task="extrapolation") == ["extrapolation"]
    with pytest.raises(ValueError, match="'task'"):
        suite.folds(task="nope")
