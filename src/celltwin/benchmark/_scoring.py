"""Scoring: every prediction of a fold through :func:`celltwin.eval.evaluate`, as result rows.

:func:`score_fold` is the cell suites' single metric step: one ``evaluate`` call per model (the
split-half ceiling computed once), its long tables turned into result rows
(``model, context, perturbation, metric, value``; ``perturbation`` is ``name@dose`` for dosed
units). :func:`effect_interval_coverage` scores the effect intervals of models that have them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, UNS_KEY
from ..eval import CELL_KINDS, VCC_METRICS, Evaluation, evaluate, interval_coverage, list_metrics
from ._features import FoldData

#: Model name of the split-half noise-ceiling rows.
CEILING = "ceiling"
#: Metric name of the effect-interval coverage rows (see :func:`effect_interval_coverage`).
EFFECT_INTERVAL_COVERAGE = "effect_interval_coverage"
#: Columns of the scored rows of one fold.
SCORE_COLUMNS: tuple[str, ...] = ("model", CONTEXT, PERTURBATION, "metric", "value")


def unit_labels(obs: pd.DataFrame) -> np.ndarray:
    """One label per cell: its perturbation, with ``@dose`` when the cell has a dose."""
    perts = obs[PERTURBATION].astype(str).to_numpy(dtype=object)
    if DOSE not in obs.columns:
        return perts
    doses = obs[DOSE].astype(str).replace("nan", "").to_numpy(dtype=object)
    with_dose = (doses != "") & (perts != CONTROL)
    out = perts.copy()
    out[with_dose] = perts[with_dose] + "@" + doses[with_dose]
    return out


def score_fold(
    fold: FoldData,
    predictions: Mapping[str, AnnData],
    *,
    metrics: Sequence[str],
    seed: int = 0,
    ceiling: bool = True,
) -> tuple[pd.DataFrame, dict[str, Evaluation]]:
    """Score every model's prediction of one fold: the suite's single metric step.

    Each prediction goes through :func:`celltwin.eval.evaluate` (with the fold's training cells,
    for the VCC score's mean-of-training baseline and the Systema reference) with every metric
    of ``metrics`` that cells give (``vcc_score`` as its parts); the split-half ceiling is
    computed once, in the call of the first model that predicted every unit (or, when none did,
    with the truth as its own prediction: the same rows, whichever models ran). Metrics that need
    more than cells (``interaction_pearson``: the true interactions) are left to the suite
    (:attr:`~celltwin.benchmark.CellTask.extra_scores`).

    Returns
    -------
    results
        Per-unit rows (``model, context, perturbation, metric, value``; ``perturbation`` is
        ``name@dose`` for dosed units), the ceiling as model :data:`CEILING`, and fold-level
        rows (empty ``perturbation``) for aggregate metrics and ``vcc_score``.
    evaluations
        ``{model: Evaluation}``, for the report.
    """
    from_cells = set(list_metrics(kinds=CELL_KINDS))
    names = [m for m in _expand(metrics) if m in from_cells]
    truth_units = _units(fold.truth.obs)
    frames: list[pd.DataFrame] = []
    evaluations: dict[str, Evaluation] = {}
    need_ceiling = ceiling
    # Models predicting every unit first: the ceiling is computed in the first call.
    full = {m: truth_units <= _units(p.obs) for m, p in predictions.items()}
    for model in sorted(predictions, key=lambda m: (not full[m], m)):
        result = evaluate(
            fold.truth,
            predictions[model],
            train=fold.train,
            metrics=names,
            ceiling=need_ceiling and full[model],
            n_boot=200,
            seed=seed,
            allow_missing=not full[model],
        )
        evaluations[model] = result
        frames += _result_rows(result, model, ceiling=need_ceiling and full[model])
        need_ceiling = need_ceiling and not full[model]
        if "vcc_score" in metrics:
            value = result.scores.get("vcc_score", np.nan)
            frames.append(_fold_row(model, "vcc_score", value))
    if need_ceiling and predictions:
        frames.append(_ceiling_alone(fold, names, seed=seed))
    columns = list(SCORE_COLUMNS)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return table.loc[:, columns], evaluations


def _ceiling_alone(fold: FoldData, metrics: Sequence[str], *, seed: int) -> pd.DataFrame:
    """The ceiling rows of a fold no model predicted whole: the truth scored as its own
    prediction, so the fold keeps its ceiling whichever models the run holds."""
    itself = fold.truth.copy()
    itself.uns[UNS_KEY] = {"prediction": {"kind": "cells", "model": CEILING}}
    result = evaluate(fold.truth, itself, train=fold.train, metrics=metrics, n_boot=1, seed=seed)
    return _long(result.ceiling_values, CEILING)


def _units(obs: pd.DataFrame) -> set[tuple[str, str]]:
    """The (context, unit label) pairs of perturbed cells."""
    units = set(zip(obs[CONTEXT].astype(str), unit_labels(obs), strict=False))
    return {u for u in units if u[1] != CONTROL}


def _result_rows(result: Evaluation, model: str, *, ceiling: bool) -> list[pd.DataFrame]:
    """An evaluation's per-unit rows, its ceiling's (``ceiling=True``) and its aggregates."""
    frames = [_long(result.per_perturbation, model)]
    if ceiling:
        frames.append(_long(result.ceiling_values, CEILING))
    if len(result.aggregate):
        agg = result.aggregate.assign(model=model, perturbation="")
        frames.append(agg.loc[:, list(SCORE_COLUMNS)])
    return frames


def _expand(metrics: Sequence[str]) -> list[str]:
    """Metric names with ``vcc_score`` replaced by its parts (:data:`celltwin.eval.VCC_METRICS`)."""
    out: list[str] = []
    for name in metrics:
        for part in VCC_METRICS if name == "vcc_score" else (name,):
            if part not in out:
                out.append(part)
    return out


def _fold_row(model: str, metric: str, value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"model": [model], CONTEXT: [""], PERTURBATION: [""], "metric": [metric], "value": [value]}
    )


def _long(values: pd.DataFrame, model: str) -> pd.DataFrame:
    """An evaluation's long table as result rows (``perturbation@dose`` when dosed)."""
    if values.empty:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    pert = values[PERTURBATION].astype(str)
    if DOSE in values.columns:
        dose = values[DOSE].astype(object).where(values[DOSE].notna(), "").astype(str)
        pert = pert.where(dose == "", pert + "@" + dose)
    return pd.DataFrame(
        {
            "model": model,
            CONTEXT: values[CONTEXT].astype(str).to_numpy(),
            PERTURBATION: pert.to_numpy(),
            "metric": values["metric"].astype(str).to_numpy(),
            "value": values["value"].to_numpy(dtype=float),
        }
    )


def effect_interval_coverage(fold: FoldData, effects: Mapping[str, AnnData]) -> pd.DataFrame:
    """Share of genes whose held-out true effect lies in the model's interval, per unit.

    The true effect of a unit is the mean of its held-out cells minus the mean of the query
    control cells of its context (the same control cells the model was given). Units predicted
    as measured (no interval) are left out.

    Returns
    -------
    pandas.DataFrame
        ``model, context, perturbation, metric, value`` with metric
        :data:`EFFECT_INTERVAL_COVERAGE`.
    """
    rows = []
    truth = fold.truth
    truth_units = unit_labels(truth.obs)
    truth_ctx = truth.obs[CONTEXT].astype(str).to_numpy()
    query_ctx = fold.query.obs[CONTEXT].astype(str).to_numpy()
    query_ctrl = fold.query.obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    for model, eff in effects.items():
        genes = list(eff.var_names)
        t_cols = truth.var_names.get_indexer(genes)
        q_cols = fold.query.var_names.get_indexer(genes)
        if (t_cols < 0).any() or (q_cols < 0).any():
            continue
        lower = np.asarray(eff.layers["lower"], dtype=float)
        upper = np.asarray(eff.layers["upper"], dtype=float)
        labels = unit_labels(eff.obs)
        for i, (context, unit) in enumerate(zip(eff.obs[CONTEXT].astype(str), labels, strict=True)):
            cells = (truth_ctx == context) & (truth_units == unit)
            ctrl = query_ctrl & (query_ctx == context)
            if not cells.any() or not ctrl.any() or not np.isfinite(lower[i]).all():
                continue
            true = _col_mean(truth.X, cells, t_cols) - _col_mean(fold.query.X, ctrl, q_cols)
            value = interval_coverage(true, lower=lower[i], upper=upper[i])[0]
            rows.append((model, context, unit, EFFECT_INTERVAL_COVERAGE, float(value)))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def _col_mean(x: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    sub = x[np.flatnonzero(rows)][:, cols]
    return np.asarray(sub.mean(axis=0), dtype=float).ravel()
