"""Suites hand fit parameters (``perturbation_features``) to the models whose ``_fit`` names
them: the base ``fit(*args, **kwargs)`` hides them from ``fit``'s own signature."""

from __future__ import annotations

from celltwin.benchmark._suites._cell_task import accepts
from celltwin.models import MODELS


def test_models_taking_prior_features_are_recognised() -> None:
    for name in ("transition", "linear", "nearest_perturbation"):
        assert accepts(name, "perturbation_features"), name
        assert "perturbation_features" in MODELS[name].fit_arguments
    assert not accepts("mean", "perturbation_features")
    assert "checkpoint_dir" in MODELS["transition"].fit_arguments
