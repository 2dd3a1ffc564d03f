"""Predicted mean effects of conditions, from any registered model (one table for every kind).

Screens, explanations and the server ask every model the same question, "what is the mean
change of each gene under this condition in this context?", whatever the model predicts:

- models with their own ``predict_effects`` (``transition``) answer it directly, with intervals,
  an in-domain score and the source of each answer;
- the baselines that add a per-condition effect to control cells (``mean``, ``linear``,
  ``nearest_perturbation``, ...) return that effect, before their clipping of cells at zero;
- other cell and pseudobulk models (:class:`CellModel`) predict the condition and the effect is
  its mean minus the mean of the context's control cells in ``adata``;
- signature models (:class:`SignatureModel`) predict gene-score rows, which are the effects.

The table has one row per condition, the model's genes as columns, layers ``lower``/``upper``
(NaN where a model has no intervals) and obs ``context``, ``perturbation``, ``dose``,
:data:`~celltwin._keys.IN_DOMAIN` (NaN where the model has no score) and
:data:`~celltwin._keys.PREDICTION_SOURCE` (``""`` where the model does not say).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, IN_DOMAIN, PERTURBATION, PREDICTION_SOURCE
from ._cell import CellModel
from ._conditions import as_conditions, condition_keys
from ._effects import EffectModel
from ._model import Model
from ._signature_model import SignatureModel

__all__ = ["predict_effects"]


def predict_effects(
    model: Model,
    adata: AnnData | None,
    *,
    conditions: pd.DataFrame | Sequence[Sequence[str]],
    seed: int = 0,
    n_cells: int | None = None,
) -> AnnData:
    """Predicted mean effect of each condition, in one table for every kind of model.

    Parameters
    ----------
    model
        A fitted model.
    adata
        The control cells of every context asked for (``obs['perturbation'] == "control"``);
        ``None`` for signature models and the effect baselines, which predict without cells.
    conditions
        As in :meth:`CellModel.predict`: a DataFrame with ``context``, ``perturbation`` (and
        optionally ``dose``) or a list of ``(context, perturbation[, dose])`` tuples.
    seed
        Seed of generated cells.
    n_cells
        For models with their own ``predict_effects`` that take it (``transition``): how many
        control cells (drawn once per context) the effects are computed from; ``None`` uses
        every control cell. Faster for screens, at a cost measured in BENCHMARKS.md. Ignored by
        models that compute effects without cells.

    Returns
    -------
    AnnData
        One row per condition (in the order asked), the model's genes as columns; ``X`` the
        effect, layers ``lower`` and ``upper``; obs ``context``, ``perturbation``, ``dose``,
        ``in_domain`` and ``prediction_source``.

    Raises
    ------
    TypeError
        When ``model`` is neither a cell nor a signature model, or a cell model gets no
        ``adata``.
    """
    table = as_conditions(conditions)
    own = getattr(model, "predict_effects", None)
    if callable(own):
        if adata is None:
            raise TypeError(f"{model.name} predicts from control cells: pass adata")
        options = {"n_cells": n_cells} if n_cells is not None and _takes(own, "n_cells") else {}
        return _complete(own(adata, conditions=table, seed=seed, **options), table)
    if isinstance(model, SignatureModel):
        pred = model.predict(conditions=table[[CONTEXT, PERTURBATION]])
        return _complete(_table(table, list(pred.var_names), np.asarray(pred.X)), table)
    if isinstance(model, EffectModel):
        return _complete(_from_effect_model(model, table), table)
    if isinstance(model, CellModel):
        if adata is None:
            raise TypeError(f"{model.name} predicts from control cells: pass adata")
        return _complete(_from_cells(model, adata, table, seed=seed), table)
    raise TypeError(f"cannot predict effects with {type(model).__name__}")


def _takes(method: object, name: str) -> bool:
    """Whether ``method`` accepts the keyword ``name``."""
    return name in inspect.signature(method).parameters  # type: ignore[arg-type]


def _from_effect_model(model: EffectModel, table: pd.DataFrame) -> AnnData:
    """A baseline's own effects (one batched call, no cells generated)."""
    model._check_fitted()
    keys = condition_keys(table)
    effect = np.zeros((len(keys), len(model.genes_)))
    todo = [i for i, k in enumerate(keys) if k[1] != CONTROL]
    if todo:
        effect[todo] = model._effects([keys[i] for i in todo])
    return _table(table, list(model.genes_), effect)


def _from_cells(model: CellModel, adata: AnnData, table: pd.DataFrame, *, seed: int) -> AnnData:
    """Effects of a cell or pseudobulk model: condition mean minus its context's control mean."""
    pred = model.predict(adata, conditions=table, seed=seed)
    genes = list(pred.var_names)
    x = _dense(pred.X)
    labels = _row_labels(pred.obs)
    wanted = _row_labels(table)
    means = pd.DataFrame(x, index=labels).groupby(level=0, sort=False).mean()
    controls = adata[adata.obs[PERTURBATION].astype(str).to_numpy() == CONTROL, genes]
    control_mean = (
        pd.DataFrame(_dense(controls.X), index=controls.obs[CONTEXT].astype(str).to_numpy())
        .groupby(level=0, sort=False)
        .mean()
    )
    effect = (
        means.loc[wanted].to_numpy()
        - control_mean.loc[table[CONTEXT].astype(str).to_numpy()].to_numpy()
    )
    return _table(table, genes, effect)


def _row_labels(obs: pd.DataFrame) -> pd.Index:
    """``context|perturbation|dose`` labels, so equal conditions group together."""
    dose = obs[DOSE].astype(str) if DOSE in obs else pd.Series("", index=obs.index)
    return pd.Index(
        obs[CONTEXT].astype(str).to_numpy()
        + "|"
        + obs[PERTURBATION].astype(str).to_numpy()
        + "|"
        + dose.to_numpy()
    )


def _dense(x: object) -> np.ndarray:
    """A dense float64 copy of a matrix that may be sparse."""
    toarray = getattr(x, "toarray", None)
    return np.asarray(toarray() if callable(toarray) else x, dtype=np.float64)


def _table(table: pd.DataFrame, genes: Sequence[str], effect: np.ndarray) -> AnnData:
    """An effects AnnData without intervals."""
    nan = np.full(effect.shape, np.nan, dtype=np.float32)
    obs = pd.DataFrame(
        {
            CONTEXT: table[CONTEXT].astype(str).to_numpy(),
            PERTURBATION: table[PERTURBATION].astype(str).to_numpy(),
            DOSE: table[DOSE].astype(str).to_numpy() if DOSE in table else "",
        },
        index=pd.Index([f"condition{i}" for i in range(len(table))]),
    )
    return AnnData(
        X=np.asarray(effect, dtype=np.float32),
        obs=obs,
        var=pd.DataFrame(index=pd.Index(genes)),
        layers={"lower": nan, "upper": nan.copy()},
    )


def _complete(effects: AnnData, table: pd.DataFrame) -> AnnData:
    """Every column and layer of the table, filled where a model gives less."""
    if "lower" not in effects.layers:
        effects.layers["lower"] = np.full(effects.shape, np.nan, dtype=np.float32)
        effects.layers["upper"] = np.full(effects.shape, np.nan, dtype=np.float32)
    if IN_DOMAIN not in effects.obs:
        effects.obs[IN_DOMAIN] = np.nan
    if PREDICTION_SOURCE not in effects.obs:
        effects.obs[PREDICTION_SOURCE] = ""
    if DOSE not in effects.obs:
        effects.obs[DOSE] = table[DOSE].astype(str).to_numpy() if DOSE in table else ""
    return effects
