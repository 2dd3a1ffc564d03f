"""One model on one fold of a cell suite, in this process: fit, predict, measure.

The model is fitted on the fold's training cells only and asked for every held-out condition;
what it refuses (:class:`~celltwin.models.UnseenConditionError`) is recorded, not fatal. Models
with effect intervals (``predict_effects``) return them too, for the interval coverage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anndata as ad
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, DOSE, PERTURBATION
from ..models import UnseenConditionError
from ._features import FoldData
from ._measure import measure, measured
from ._suites._cell_task import CellTask


def predict_conditions(
    model: Any, query: AnnData, *, conditions: pd.DataFrame, seed: int
) -> tuple[AnnData | None, list[str]]:
    """Predict every condition the model accepts; return the prediction and refusals.

    The whole table is predicted at once; when the model refuses some condition
    (:class:`~celltwin.models.UnseenConditionError`) each condition is asked for on its own, so
    a model that handles part of a fold is scored on that part, its refusals recorded.
    """
    try:
        return model.predict(query, conditions=conditions, seed=seed), []
    except UnseenConditionError:
        pass
    parts, refused = [], []
    for i in range(len(conditions)):
        row = conditions.iloc[[i]]
        try:
            parts.append(model.predict(query, conditions=row, seed=seed + i))
        except UnseenConditionError as err:
            refused.append(f"{_unit_label(row.iloc[0])}: {err}")
    if not parts:
        return None, refused
    pred = ad.concat(parts, join="inner", index_unique="-", uns_merge="first")
    pred.obs_names = [f"pred{i}" for i in range(pred.n_obs)]
    return pred, refused


def predict_intervals(
    model: Any, query: AnnData, pred: AnnData | None, *, seed: int
) -> AnnData | None:
    """The model's effect intervals for the conditions it predicted, when it has them.

    Models with a ``predict_effects`` method (``transition``) return each predicted gene effect
    with an interval (layers ``lower`` / ``upper``, ``uns['interval']`` the nominal coverage);
    the benchmark scores how often the held-out true effects fall inside
    (:func:`celltwin.benchmark._scoring.effect_interval_coverage`). Timed apart from fit and predict (not in the timings).
    """
    if pred is None or not hasattr(model, "predict_effects"):
        return None
    keys = [c for c in (CONTEXT, PERTURBATION, DOSE) if c in pred.obs.columns]
    conditions = pred.obs[keys].astype(str).drop_duplicates().reset_index(drop=True)
    try:
        return model.predict_effects(query, conditions=conditions, seed=seed)
    except UnseenConditionError:
        return None


def _unit_label(row: Mapping[str, Any]) -> str:
    dose = str(row.get(DOSE, "") or "")
    return f"{row[PERTURBATION]}@{dose}" if dose and dose != "nan" else str(row[PERTURBATION])


def fit_predict(
    task: CellTask,
    name: str,
    fold: FoldData,
    *,
    seed: int,
    fit_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> tuple[AnnData | None, AnnData | None, dict[str, Any]]:
    """Fit and predict in this process, with the measurements of :func:`measure`.

    Returns the prediction, the predicted effects with their intervals (models with
    ``predict_effects``, see :func:`predict_intervals`; else ``None``) and the measurements.
    """
    model = task.make_model(name, seed=seed, params=params)
    with measure() as total:
        start = time.perf_counter()
        model.fit(fold.train, **fit_kwargs)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        pred, refused = predict_conditions(model, fold.query, conditions=fold.conditions, seed=seed)
        predict_s = time.perf_counter() - start
    effects = predict_intervals(model, fold.query, pred, seed=seed)
    stats = {"fit_s": fit_s, "predict_s": predict_s, **measured(total)}
    return pred, effects, {**stats, "n_refused": len(refused), "refused": refused}
