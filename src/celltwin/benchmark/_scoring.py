"""Scoring: every prediction of a fold through :func:`celltwin.eval.evaluate`, as result rows.

:func:`score_fold` is the cell suites' single metric step: one ``evaluate`` call per model (the
split-half ceiling computed once), its long tables turned into result rows
(``model, context, perturbation, metric, value``; ``perturbation`` is ``name@dose`` for dosed
units). :func:`effect_interval_coverage` scores the effect intervals of models that have them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, UNS_KEY
from ..eval import (
    METRICS,
    build_inputs,
    compute_metrics,
    evaluate,
    rank_sum_test,
    split_half_ceiling,
)
from ._features import FoldData
from ._suite_metrics import SUITE_METRICS

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
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score every model's prediction of one fold: the suite's single metric step.

    Each prediction goes through :func:`celltwin.eval.evaluate` (with the fold's training cells,
    for the VCC score's mean-of-training baseline and the Systema reference); the split-half
    ceiling is computed once, in the call of the first model that predicted every unit. Metrics
    of :data:`~celltwin.benchmark._suite_metrics.SUITE_METRICS` that the registry does not know
    yet are computed next to it from the same inputs (:func:`_suite_metric_rows`).

    Returns
    -------
    results
        Per-unit rows (``model, context, perturbation, metric, value``; ``perturbation`` is
        ``name@dose`` for dosed units), the ceiling as model :data:`CEILING`, and fold-level
        rows (empty ``perturbation``) for aggregate metrics and ``vcc_score``.
    evaluations
        ``{model: Evaluation}``, for the report.
    """
    names = [m for m in _expand(metrics) if m in METRICS]
    truth_units = set(
        zip(fold.truth.obs[CONTEXT].astype(str), unit_labels(fold.truth.obs), strict=False)
    )
    truth_units = {u for u in truth_units if u[1] != CONTROL}

    def covers(pred: AnnData) -> bool:
        have = set(zip(pred.obs[CONTEXT].astype(str), unit_labels(pred.obs), strict=False))
        return truth_units <= have

    frames: list[pd.DataFrame] = []
    evaluations: dict[str, Any] = {}
    need_ceiling = ceiling
    # Models predicting every unit first: the ceiling is computed in the first call.
    for model in sorted(predictions, key=lambda m: (not covers(predictions[m]), m)):
        pred = predictions[model]
        full = covers(pred)
        result = evaluate(
            fold.truth,
            pred,
            train=fold.train,
            metrics=names,
            ceiling=need_ceiling and full,
            n_boot=200,
            seed=seed,
            allow_missing=not full,
        )
        evaluations[model] = result
        frames.append(_long(result.per_perturbation, model))
        if need_ceiling and full:
            frames.append(_long(result.ceiling_values, CEILING))
            need_ceiling = False
        if len(result.aggregate):
            agg = result.aggregate.assign(model=model, perturbation="")
            frames.append(agg.loc[:, list(SCORE_COLUMNS)])
        if "vcc_score" in metrics:
            value = result.scores.get("vcc_score", np.nan)
            frames.append(_fold_row(model, "vcc_score", value))
    local = [m for m in metrics if m not in METRICS and m in SUITE_METRICS]
    if local:
        frames.append(_suite_metric_rows(fold, predictions, local, seed=seed, ceiling=ceiling))
    columns = list(SCORE_COLUMNS)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return table.loc[:, columns], evaluations


#: Metrics making up the Virtual Cell Challenge score.
_VCC_PARTS = ("mae", "des", "pds")


def _expand(metrics: Sequence[str]) -> list[str]:
    """Metric names with ``vcc_score`` replaced by its parts (mae, des, pds)."""
    out: list[str] = []
    for name in metrics:
        for part in _VCC_PARTS if name == "vcc_score" else (name,):
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


def _rows_of(x: Any, mask: np.ndarray) -> Any:
    return x[np.flatnonzero(mask)]


def _suite_metric_rows(
    fold: FoldData,
    predictions: Mapping[str, AnnData],
    names: Sequence[str],
    *,
    seed: int,
    ceiling: bool,
) -> pd.DataFrame:
    """Suite metrics not (yet) in the registry, from the registry's own input builder.

    The same :func:`~celltwin.eval.build_inputs` and :func:`~celltwin.eval.split_half_ceiling`
    that :func:`~celltwin.eval.evaluate` relies on, per context, against the truth's control
    cells; a metric needing predicted cells is left out for pseudobulk predictions.
    """
    chosen = [SUITE_METRICS[n] for n in names]
    needs_cells = {"pred_de", "pred_lfc", "pred_fdr", "pred_cells"}
    kinds = set().union(*(m.kinds for m in chosen))
    truth = fold.truth
    genes = np.asarray(fold.genes, dtype=str)
    t_lab = unit_labels(truth.obs).astype(str)
    t_ctx = truth.obs[CONTEXT].astype(str).to_numpy()
    rows: list[tuple[str, str, str, str, float]] = []
    for context in sorted(set(t_ctx.tolist())):
        in_ctx = t_ctx == context
        t_x = _rows_of(truth.X, in_ctx)
        lab = t_lab[in_ctx]
        true_de = rank_sum_test(t_x, lab, control=CONTROL) if "de" in kinds else None
        for model in sorted(predictions):
            pred = predictions[model]
            in_pred = pred.obs[CONTEXT].astype(str).to_numpy() == context
            if not in_pred.any():
                continue
            p_lab = unit_labels(pred.obs).astype(str)[in_pred]
            keep = np.isin(lab, np.append(np.unique(p_lab), CONTROL))
            kind = pred.uns.get(UNS_KEY, {}).get("prediction", {}).get("kind", "cells")
            usable = [
                m for m in chosen if not (kind == "pseudobulk" and set(m.needs) & needs_cells)
            ]
            if not usable:
                continue
            # Only the prediction's means are used from it (pseudobulk kind): no DE on it.
            inputs = build_inputs(
                _rows_of(pred.X, in_pred),
                _rows_of(t_x, keep),
                pred_labels=p_lab,
                true_labels=lab[keep],
                genes=genes,
                kinds={"pseudobulk"},
                control=CONTROL,
                seed=seed,
            )
            if true_de is not None:
                inputs = dataclasses.replace(inputs, true_de=true_de.select(inputs.perturbations))
            for name, value in compute_metrics(inputs, metrics=usable).items():
                for pert, v in zip(inputs.perturbations, np.atleast_1d(value), strict=True):
                    rows.append((model, context, str(pert), name, float(v)))
        if ceiling:
            ceil = split_half_ceiling(
                t_x, lab, genes=genes, metrics=chosen, n_repeats=3, seed=seed, control=CONTROL
            ).mean()
            perts = np.unique(lab[lab != CONTROL])
            for name, value in ceil.items():
                for pert, v in zip(perts, np.atleast_1d(value), strict=True):
                    rows.append((CEILING, context, str(pert), name, float(v)))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


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
            inside = (true >= lower[i]) & (true <= upper[i])
            rows.append((model, context, unit, EFFECT_INTERVAL_COVERAGE, float(inside.mean())))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def _col_mean(x: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    sub = x[np.flatnonzero(rows)][:, cols]
    return np.asarray(sub.mean(axis=0), dtype=float).ravel()
