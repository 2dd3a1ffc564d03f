"""Effect models: prediction = control cells + a per-condition effect (delta) in X space.

Every baseline is one of these; they differ only in how the effect of a condition is computed
from the training effects (the pseudobulk mean of a condition minus its context's control mean).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, SPLIT
from ..pp import pseudobulk
from ._cell import CellModel
from ._conditions import ConditionKey, condition_keys
from ._errors import UnseenConditionError
from ._model import expect_shape

__all__ = [
    "EffectModel",
    "FeatureEffectModel",
    "TrainingEffects",
    "training_effects",
]


@dataclass(frozen=True)
class TrainingEffects:
    """Pseudobulk summary of the training cells, rows aligned with ``model.conditions_``."""

    expression: np.ndarray  # conditions x genes: mean X of each perturbed condition
    delta: np.ndarray  # conditions x genes: expression minus the context's control mean
    control_contexts: list[str]
    control_expression: np.ndarray  # contexts x genes: mean X of the control cells


def training_effects(train: AnnData, conditions: pd.DataFrame) -> TrainingEffects:
    """Pseudobulk the (clean) training cells and align the rows with ``conditions``."""
    pb = pseudobulk(train, by=[CONTEXT, PERTURBATION, DOSE])
    obs = pb.obs
    keys = list(
        zip(
            obs[CONTEXT].astype(str),
            obs[PERTURBATION].astype(str),
            obs[DOSE].astype(str),
            strict=True,
        )
    )
    row_of = {k: i for i, k in enumerate(keys)}
    rows = [row_of[k] for k in condition_keys(conditions)]
    mean = np.asarray(pb.X, dtype=np.float64)
    delta = np.asarray(pb.layers["delta"], dtype=np.float64)

    # Control groups of one context may differ in dose (vehicle); weight them by cells.
    is_control = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    contexts = sorted(set(obs.loc[is_control, CONTEXT].astype(str)))
    n = obs["n_cells"].to_numpy(dtype=np.float64)
    control_expression = np.zeros((len(contexts), mean.shape[1]))
    for j, context in enumerate(contexts):
        sel = is_control & (obs[CONTEXT].astype(str).to_numpy() == context)
        control_expression[j] = n[sel] @ mean[sel] / n[sel].sum()
    return TrainingEffects(
        expression=mean[rows],
        delta=delta[rows],
        control_contexts=contexts,
        control_expression=control_expression,
    )


class EffectModel(CellModel):
    """A model predicting ``max(control + effect, 0)`` per cell (or per control mean).

    Log-normalised expression cannot be negative, so shifted values are clipped at 0; this is
    why the mean of predicted cells can exceed the control mean plus the effect for genes with
    many zeros among the control cells.

    Subclasses implement :meth:`_effects`. The training effects are kept as ``delta_``
    (conditions x genes, rows aligned with ``conditions_``) when ``"delta_"`` is among
    :meth:`_array_names`.
    """

    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        effects = training_effects(train, self.conditions_)
        if "delta_" in self._array_names():
            self.delta_: np.ndarray = effects.delta

    def _array_names(self) -> tuple[str, ...]:
        return ("delta_",)

    @abstractmethod
    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        """Effect (genes-wide delta) per requested non-control condition, float64.

        Raise :class:`UnseenConditionError` (listing every unsupported condition) when some
        cannot be predicted.
        """

    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:
        keys = condition_keys(conditions)
        effects = np.zeros((len(keys), len(self.genes_)))
        todo = [i for i, k in enumerate(keys) if k[1] != CONTROL]
        if todo:
            effects[todo] = self._effects([keys[i] for i in todo])
        if self.predicts == "pseudobulk":
            return [
                np.maximum(c.mean(axis=0, keepdims=True) + e, 0.0)
                for c, e in zip(controls, effects, strict=True)
            ]
        return [np.maximum(c + e, 0.0) for c, e in zip(controls, effects, strict=True)]

    def _check_state(self) -> None:
        super()._check_state()
        if "delta_" in self._array_names():
            expect_shape(self, "delta_", (len(self.conditions_), len(self.genes_)))

    # --- lookups shared by the baselines ----------------------------------------------------

    def _row_of(self) -> dict[ConditionKey, int]:
        return {k: i for i, k in enumerate(condition_keys(self.conditions_))}

    def _refuse(self, problems: list[str], *, fix: str) -> None:
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise UnseenConditionError(
                f"{self.name} cannot predict {'; '.join(problems[:5])}{more}. Fix: {fix}"
            )


class FeatureEffectModel(EffectModel):
    """An effect model that takes prior features of the perturbations at fit.

    ``fit(adata, perturbation_features=table)`` hands the table to ``_fit``; ``fit`` names the
    argument so callers can see (and introspect) that the model takes it.
    """

    def fit(
        self,
        adata: AnnData,
        *,
        split_key: str | None = SPLIT,
        perturbation_features: pd.DataFrame | None = None,
        **fit_params: Any,
    ) -> Self:
        """Learn from the training cells of ``adata`` (see :meth:`CellModel.fit`).

        Parameters
        ----------
        adata
            Canonical cells x genes, ``X`` in log1p(CP10k).
        split_key
            obs column of the split; only ``"train"`` cells are used.
        perturbation_features
            Optional DataFrame, one row per perturbation name, numeric columns: an embedding
            of the perturbations (e.g. from prior knowledge) used instead of the default.
        """
        return super().fit(
            adata, split_key=split_key, perturbation_features=perturbation_features, **fit_params
        )
