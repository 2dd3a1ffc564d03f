"""celltwin.testing on models written here, as a user would: a model passes, broken ones fail."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

import celltwin.testing as testing
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.models import CellModel, ModelFormatError, SignatureModel, UnseenConditionError
from celltwin.testing import check_model, parametrize_with_checks


class GlobalShift(CellModel):
    """Control cells plus ``scale`` times the mean effect of every perturbed training cell."""

    name = "global_shift"
    predicts = "cells"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        x = train.X.toarray() if sp.issparse(train.X) else np.asarray(train.X)
        control = train.obs[PERTURBATION].to_numpy() == CONTROL
        self.shift_: np.ndarray = x[~control].mean(axis=0) - x[control].mean(axis=0)

    def _array_names(self) -> tuple[str, ...]:
        return ("shift_",)

    def _check_state(self) -> None:  # loaded arrays must fit model.json
        super()._check_state()
        if self.shift_.shape != (len(self.genes_),):
            raise ModelFormatError(f"shape mismatch: 'shift_' has shape {self.shift_.shape}")

    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:
        return [
            c if p == CONTROL else np.maximum(c + self.scale * self.shift_, 0.0)
            for p, c in zip(conditions[PERTURBATION], controls, strict=True)
        ]


class ContextMean(SignatureModel):
    """The target context's mean training signature (refuses contexts without any)."""

    name = "context_mean"

    def __init__(self) -> None:
        pass

    def _fit(self, data: Any) -> None:
        self.scores_: np.ndarray = data.x.copy()

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_",)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        contexts = self.pairs_[CONTEXT].to_numpy()
        out = []
        for context in table[CONTEXT]:
            rows = self.scores_[contexts == context]
            if len(rows) == 0:
                raise UnseenConditionError(f"{self.name} cannot predict context {context!r}")
            measured = ~np.isnan(rows)  # genes measured nowhere in the context score 0
            out.append(np.where(measured, rows, 0.0).sum(0) / np.maximum(measured.sum(0), 1))
        return np.array(out)


def test_public_surface() -> None:
    assert set(testing.__all__) == {"check_model", "checks_of", "parametrize_with_checks"}


def test_a_small_cell_model_passes() -> None:
    check_model(GlobalShift(scale=0.5))
    check_model(GlobalShift)  # a class is checked with its default parameters


def test_a_small_signature_model_passes() -> None:
    check_model(ContextMean(), handles_unseen={"context", "perturbation"})


class NotReturningSelf(GlobalShift):
    def fit(self, adata: AnnData, **kwargs: Any) -> Any:  # type: ignore[override]
        super().fit(adata, **kwargs)
        return None


class StoringMore(GlobalShift):
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.cache_ = {}


class ClaimingTooMuch(GlobalShift):
    """Refuses unseen perturbations though declared to handle them."""

    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:
        trained = {CONTROL, *self.conditions_[PERTURBATION]}
        new = sorted(set(conditions[PERTURBATION]) - trained)
        if new:
            raise UnseenConditionError(f"{self.name} cannot predict {new}")
        return super()._predict_conditions(conditions, controls)


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        (NotReturningSelf(), {}, "check_fit_returns_self.*fit does not return self"),
        (StoringMore(), {}, "check_init_only_stores_parameters.*vars"),
        (
            ClaimingTooMuch(),
            {"handles_unseen": {"perturbation"}},
            "check_unseen_conditions.*UnseenConditionError",
        ),
    ],
)
def test_check_model_catches_broken_models(model, options, message) -> None:
    with pytest.raises(AssertionError, match=message):
        check_model(model, **options)


def test_only_celltwin_models_are_checked() -> None:
    with pytest.raises(TypeError, match="Model"):
        check_model(object())  # type: ignore[arg-type]


@parametrize_with_checks([GlobalShift(), GlobalShift(scale=2.0), ContextMean()])
def test_parametrize_with_checks_gives_one_case_per_check(model, check) -> None:
    check(model)


def test_parametrize_with_checks_names_each_case() -> None:
    mark = parametrize_with_checks([GlobalShift()])
    ids = [p.id for p in mark.args[1]]
    assert "global_shift-check_fit_returns_self_and_reads_training_cells_only" in ids
    assert len(ids) == len(list(testing.checks_of(GlobalShift())))
