"""The registry is data; the public surface is exactly what __all__ says; conditions validate."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import celltwin.models as models
from celltwin._keys import CONTEXT, DOSE, PERTURBATION, TEST
from celltwin.models import (
    MODELS,
    CellModel,
    MeanBaseline,
    Model,
    ModelSpec,
    SignatureModel,
    as_conditions,
    available,
    conditions_of,
    get_model,
    get_spec,
    register_model,
)

PUBLIC = {
    # the contract, the registry and persistence
    "Model",
    "CellModel",
    "SignatureModel",
    "ModelSpec",
    "MODELS",
    "PEERS_EXTRA",
    "available",
    "get_model",
    "get_spec",
    "register_model",
    "load",
    "ModelFormatError",
    "NotFittedError",
    "UnseenConditionError",
    # conditions
    "ConditionKey",
    "as_conditions",
    "condition_label",
    "conditions_of",
    "dose_components",
    # one-call training and prediction (what `celltwin fit` / `celltwin predict` run)
    "fit",
    "predict",
    "predict_effects",
    # baselines
    "AdditiveBaseline",
    "ContextShiftBaseline",
    "ControlBaseline",
    "LinearBaseline",
    "MeanBaseline",
    "NearestDoseBaseline",
    "NearestPerturbationBaseline",
    # signature-data models
    "ContextTransferLinear",
    "LowRankSignatures",
    "MeanOtherContexts",
    "MeanOtherPerturbations",
    "SignatureBlend",
    "UnpredictableConditionsError",
    "refusals_path",
    "SignatureFactor",
    # dose-signature models (one row per drug and dose)
    "DOSE_MODELS",
    "DoseResponse",
    "DoseSignatureModel",
    "LinearLogDose",
    "MeanOtherDrugs",
    "NearestDoseSignature",
    # learned models
    "TransitionModel",
    # peers (other groups' models, the "peers" extra)
    "ScGenModel",
    "StateTransitionModel",
}


def test_public_names() -> None:
    assert set(models.__all__) == PUBLIC
    assert all(hasattr(models, name) for name in PUBLIC)


def test_available_lists_every_registered_model() -> None:
    table = available()
    assert list(table.index) == [
        "control",
        "mean",
        "additive",
        "linear",
        "context_shift",
        "nearest_perturbation",
        "nearest_dose",
        "transition",
        "state",
        "scgen",
        "mean_other_contexts",
        "mean_other_perturbations",
        "low_rank",
        "context_transfer_linear",
        "signature_blend",
        "signature_factor",
    ]
    assert list(table.columns) == [
        "description",
        "reference",
        "predicts",
        "handles_unseen",
        "class",
        "extra",
        "installed",
    ]
    assert set(table["predicts"]) == {"cells", "pseudobulk", "signatures"}
    for name, row in table.iterrows():
        spec = get_spec(name)
        assert issubclass(spec.cls, Model) and spec.cls.name == name
        kind_base = SignatureModel if spec.predicts == "signatures" else CellModel
        assert issubclass(spec.cls, kind_base)
        assert row["predicts"] == spec.predicts == spec.cls.predicts
        assert row["handles_unseen"] == ",".join(sorted(spec.handles_unseen))
        assert "\n" not in spec.description and spec.reference
        assert row["extra"] == (spec.extra or "")
        assert row["installed"] == spec.installed


#: What each peer's packages are imported as (the "peers" extra).
PEER_PACKAGES = ("state", "cell_load", "scgen", "scvi")


def test_peers_declare_their_extra_and_what_they_predict() -> None:
    table = available()
    assert table.loc[["state", "scgen"], "extra"].tolist() == ["peers", "peers"]
    assert set(table.loc[table["extra"] == "", "installed"]) == {True}
    # Both encode the perturbation by identity (one-hot / one network per perturbation); a
    # context enters only through its control cells (Kang's held-out cell type).
    for name in ("state", "scgen"):
        spec = get_spec(name)
        assert spec.handles_unseen == {"context"} and spec.predicts == "cells"
        assert spec.install_hint == "pip install 'celltwin[peers]'"
        found = all(importlib.util.find_spec(m) is not None for m in PEER_PACKAGES)
        assert spec.installed is found and (spec.missing_modules() == []) is found


def test_available_imports_no_peer_package() -> None:
    code = (
        "import sys; from celltwin.models import available; t = available(); "
        f"print(sorted(m for m in {PEER_PACKAGES!r} + ('lightning',) if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def _without(monkeypatch: pytest.MonkeyPatch, *hidden: str) -> None:
    """Make importlib.util.find_spec report ``hidden`` packages as not installed."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name.split(".")[0] in hidden else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize("name", ["state", "scgen"])
def test_get_model_of_a_peer_without_its_packages_says_what_to_install(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hide every peer package: the test must hold with or without the extra installed.
    _without(monkeypatch, "state", "cell_load", "scgen", "scvi")
    spec = get_spec(name)
    assert not spec.installed
    assert spec.missing_modules() == ["state", "cell_load", "scgen", "scvi"]
    with pytest.raises(ImportError, match=r"'scgen'.*Fix: pip install 'celltwin\[peers\]'"):
        get_model(name)
    table = available()
    assert not table.loc[name, "installed"] and table.loc["transition", "installed"]
    get_model("mean")  # models without an extra are unaffected


def test_get_model_passes_parameters_and_names_the_choices() -> None:
    model = get_model("linear", n_components=3, ridge=1.0)
    assert model.get_params() == {"n_components": 3, "ridge": 1.0, "embedding": "auto"}
    with pytest.raises(KeyError, match=r"no model named 'gears'.*'linear'"):
        get_model("gears")
    with pytest.raises(TypeError):
        get_model("mean", n_components=3)


def test_model_spec_must_agree_with_its_class() -> None:
    with pytest.raises(ValueError, match="the spec must agree"):
        ModelSpec("average", MeanBaseline, "x", "y", "cells", frozenset())
    with pytest.raises(ValueError, match="the spec must agree"):
        ModelSpec("mean", MeanBaseline, "x", "y", "pseudobulk", frozenset())
    with pytest.raises(ValueError, match="handles_unseen must be a subset"):
        ModelSpec("mean", MeanBaseline, "x", "y", "cells", frozenset({"dose"}))
    with pytest.raises(ValueError, match=r"extra must be None or one of \['peers'\] \(got 'gpu'\)"):
        ModelSpec("mean", MeanBaseline, "x", "y", "cells", frozenset(), extra="gpu")
    assert ModelSpec("mean", MeanBaseline, "x", "y", "cells").installed


def test_register_model_adds_a_model_every_function_knows(tmp_path) -> None:
    class Halved(MeanBaseline):
        name = "halved_mean"

    spec = ModelSpec("halved_mean", Halved, "Test model.", "here", "cells")
    try:
        assert register_model(spec) is spec
        assert get_spec("halved_mean") is spec and "halved_mean" in available().index
        assert isinstance(get_model("halved_mean"), Halved)
        with pytest.raises(ValueError, match="already registered"):
            register_model(spec)
    finally:
        MODELS.pop("halved_mean", None)
    with pytest.raises(TypeError, match="takes a ModelSpec"):
        register_model("mean")  # type: ignore[arg-type]


def test_models_taking_no_fit_parameters_refuse_them(experiment) -> None:
    with pytest.raises(TypeError, match=r"mean.fit got an unexpected fit parameter 'bogus'"):
        get_model("mean").fit(experiment.adata, bogus=1)
    with pytest.raises(TypeError, match=r"low_rank.fit got an unexpected fit parameter 'seed'"):
        get_model("low_rank").fit(AnnData(np.zeros((1, 1))), seed=0)


def test_conditions_accept_tables_and_tuples() -> None:
    table = as_conditions([("K562", "A+B", "1+10"), ("K562", "C")])
    assert table.to_dict("list") == {
        CONTEXT: ["K562", "K562"],
        PERTURBATION: ["A+B", "C"],
        DOSE: ["1+10", ""],
    }
    frame = pd.DataFrame({CONTEXT: ["K562"], PERTURBATION: ["C"], DOSE: [np.nan], "n_cells": [3]})
    assert as_conditions(frame).iloc[0].tolist() == ["K562", "C", "", 3]


@pytest.mark.parametrize(
    ("conditions", "error", "message"),
    [
        ([("K562", "B+A")], ValueError, r"'B\+A' is not canonical \(expected 'A\+B'"),
        ([("K562", "A+B", "1")], ValueError, "has 1 parts but perturbation 'A\\+B' has 2"),
        ([], ValueError, "is empty"),
        ("K562", TypeError, "must be a DataFrame or a list"),
        ([("K562",)], ValueError, "each condition must be"),
        (pd.DataFrame({"cell_type": ["K562"]}), KeyError, "no column 'context'"),
        (
            pd.DataFrame({CONTEXT: ["K"], PERTURBATION: ["A"], "n_cells": [0]}),
            ValueError,
            "must be a whole number >= 1",
        ),
    ],
)
def test_bad_conditions_are_refused_clearly(conditions, error, message) -> None:
    with pytest.raises(error, match=message):
        as_conditions(conditions)


def test_conditions_of_counts_the_perturbed_cells(experiment) -> None:
    adata = experiment.adata
    test = conditions_of(adata, split=TEST)
    assert set(test[PERTURBATION]) >= {experiment.held_single, experiment.held_combo}
    assert "control" not in set(test[PERTURBATION])
    obs = adata.obs.astype(str)
    for row in test.itertuples(index=False):
        expected = (obs[CONTEXT] == row.context) & (obs[PERTURBATION] == row.perturbation)
        expected &= obs["split"] == TEST
        assert row.n_cells == int(expected.sum())
    unsplit = AnnData(
        np.zeros((1, 1)), obs=pd.DataFrame({CONTEXT: ["K"], PERTURBATION: ["A"]}, index=["c0"])
    )
    with pytest.raises(KeyError, match="no column 'split'"):
        conditions_of(unsplit, split=TEST)
