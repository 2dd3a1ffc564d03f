"""Scoring one context: every side's metric values as rows, the ceiling, the report's deltas."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION
from .._progress import timed
from ._baselines import control_baseline_fields, mean_baseline_fields
from ._ceiling import split_half_ceiling
from ._context import (
    MAX_CELLS,
    N_PCS,
    ContextData,
    Shared,
    model_fields,
    needs_of,
    systema_reference,
    truth_inputs,
)
from ._inputs import MetricInputs
from ._plan import Plan
from ._registry import Metric
from ._units import split_unit

__all__ = ["AGG_COLUMNS", "Scored", "score_context"]

#: Genes per perturbation kept in ``Evaluation.deltas`` (the report's scatter plots).
N_REPORT_GENES = 20
#: Columns of aggregate-level metric rows (one value per context).
AGG_COLUMNS = [CONTEXT, "metric", "value"]


@dataclass
class Scored:
    """Rows scored so far, per source (``model``, ``mean``, ``control``, ``ceiling``)."""

    frames: dict[str, list[pd.DataFrame]] = field(default_factory=lambda: defaultdict(list))
    aggregates: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deltas: list[pd.DataFrame] = field(default_factory=list)


def score_context(
    plan: Plan, context: str, scored: Scored, *, ceiling: bool, n_repeats: int, seed: int
) -> None:
    """Score the model, the baselines and (with ``ceiling``) the ceiling in ``context``."""
    with timed("rows of the context"):
        ctx = ContextData.build(plan, context)
    shared = truth_inputs(plan, ctx)
    sides = {"model": model_fields(plan, ctx, shared)}
    if plan.train is not None:
        sides["mean"] = mean_baseline_fields(plan, ctx, shared)
    sides["control"] = control_baseline_fields(plan, ctx, shared)
    for name, fields in sides.items():
        inputs = MetricInputs(**shared.fields, **fields)
        with timed(f"metrics: {name}"):
            frame, agg = score_side(plan.metrics, inputs, ctx, has_dose=plan.has_dose)
        scored.frames[name].append(frame)
        scored.aggregates[name] += agg
        if name == "model":
            scored.deltas.append(delta_table(ctx, shared, inputs, has_dose=plan.has_dose))
    if ceiling and shared.control_rows.size < 2:
        plan.params["notes"].append(
            f"no ceiling for context {context!r}: its control needs 2 cells to be split"
        )
    elif ceiling:
        with timed(f"ceiling ({n_repeats} split halves)"):
            frame, agg = ceiling_rows(plan, ctx, shared, n_repeats=n_repeats, seed=seed)
        scored.frames["ceiling"].append(frame)
        scored.aggregates["ceiling"] += agg


def keys_frame(ctx: ContextData, has_dose: bool) -> pd.DataFrame:
    """The key columns of one row per evaluated unit of the context."""
    split = [split_unit(p) for p in ctx.perts.tolist()]
    frame = pd.DataFrame(
        {
            PERTURBATION: [s[0] for s in split],
            CONTEXT: ctx.context,
        }
    )
    if has_dose:
        frame[DOSE] = [s[1] for s in split]
    return frame


def score_side(
    metrics: Sequence[Metric], inputs: MetricInputs, ctx: ContextData, *, has_dose: bool
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One side's metric values in one context, as rows (see :func:`assemble`)."""
    values = {metric.name: metric.compute(inputs) for metric in metrics}
    return assemble(metrics, values, ctx, has_dose=has_dose)


def assemble(
    metrics: Sequence[Metric],
    values: Mapping[str, Any],
    ctx: ContextData,
    *,
    has_dose: bool,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Long per-perturbation rows (perturbation-level metrics) and context-level aggregates."""
    keys = keys_frame(ctx, has_dose)
    frames, aggregates = [], []
    for metric in metrics:
        value = values[metric.name]
        if metric.level == "perturbation":
            frames.append(keys.assign(metric=metric.name, value=value))
        else:
            aggregates.append({CONTEXT: ctx.context, "metric": metric.name, "value": float(value)})
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else keys.iloc[:0].assign(metric=pd.Series(dtype=str), value=pd.Series(dtype=float))
    )
    return frame, aggregates


def delta_table(
    ctx: ContextData, shared: Shared, inputs: MetricInputs, *, has_dose: bool
) -> pd.DataFrame:
    """Predicted and true deltas on each perturbation's top DE genes (for the report)."""
    true_delta = inputs.get("true_delta")
    pred_delta = inputs.get("pred_delta")
    k = min(N_REPORT_GENES, true_delta.shape[1])
    if shared.true_de is not None:
        # Most significant first; |delta| breaks ties (many p-values underflow to 0).
        order = most_significant(shared.true_de.pvalue, true_delta, k)
    else:
        order = np.argsort(-np.abs(true_delta), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(ctx.perts.size), k)
    cols = order.ravel()
    split = [split_unit(p) for p in ctx.perts.tolist()]
    frame = pd.DataFrame(
        {
            PERTURBATION: [split[i][0] for i in rows],
            CONTEXT: ctx.context,
            "gene": inputs.genes[cols],
            "true_delta": true_delta[rows, cols],
            "pred_delta": pred_delta[rows, cols],
        }
    )
    if has_dose:
        frame.insert(2, DOSE, [split[i][1] for i in rows])
    return frame


def most_significant(
    pvalue: NDArray[np.float64], delta: NDArray[np.float64], k: int
) -> NDArray[np.int64]:
    """Per row, the ``k`` columns of smallest p-value, larger ``|delta|`` first among equal ones.

    The same order as a full ``np.lexsort((-|delta|, pvalue))`` per row (stable, so remaining ties
    keep column order), sorting only the columns whose p-value is within the k smallest.
    """
    kth = np.partition(pvalue, k - 1, axis=1)[:, k - 1]
    order = np.empty((pvalue.shape[0], k), dtype=np.int64)
    for i in range(pvalue.shape[0]):
        cand = np.flatnonzero(pvalue[i] <= kth[i])
        order[i] = cand[np.lexsort((-np.abs(delta[i, cand]), pvalue[i, cand]))[:k]]
    return order


def ceiling_rows(
    plan: Plan, ctx: ContextData, shared: Shared, *, n_repeats: int, seed: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The split-half ceiling of the context's truth, as rows in the model's unit order.

    Its metrics are :attr:`Plan.ceiling_metrics`: the truth's cells give every metric, whatever
    the prediction's kind, so a run's ceiling does not depend on which model was scored first.
    """
    metrics = plan.ceiling_metrics
    reference = shared.fields.get("reference")
    if reference is None and "reference" in needs_of(metrics):
        reference = systema_reference(plan, ctx.context)
    result = split_half_ceiling(
        ctx.true_X,
        ctx.true_labels,
        genes=plan.genes,
        metrics=metrics,
        n_repeats=n_repeats,
        seed=seed,
        control=CONTROL,
        reference=reference,
        n_pcs=N_PCS,
        max_cells=MAX_CELLS,
    )
    mean = result.mean()
    position = {p: i for i, p in enumerate(result.perturbations.tolist())}
    cols = np.array([position.get(p, -1) for p in ctx.perts.tolist()])
    # The ceiling's values in the model's perturbation order; NaN for any it has not scored.
    values = {
        m.name: np.where(cols >= 0, mean[m.name][np.maximum(cols, 0)], np.nan)
        if m.level == "perturbation"
        else mean[m.name]
        for m in metrics
    }
    return assemble(metrics, values, ctx, has_dose=plan.has_dose)
