"""Planning an evaluation: which metrics, on which rows, genes and units, with what parameters.

:func:`make_plan` validates every input (:mod:`celltwin.eval._validate`), aligns the genes of the
prediction and the training cells to the truth's, pairs the units of both sides per context and
records the parameters; the result (:class:`Plan`) is what :func:`~celltwin.eval.evaluate` scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from anndata import AnnData
from numpy.typing import NDArray

from .._keys import CONTEXT, UNS_KEY
from .._version import __version__
from ..io import Problem, ValidationError
from ._inputs import CELL_KINDS, NEEDS_PRED_CELLS
from ._matrix import columns
from ._registry import METRICS, SCGEN_METRICS, Metric, get_metric
from ._units import DOSE_JOIN, preview, unit_labels
from ._validate import Match, check_kind, input_problems, match_units, pairing_problems

__all__ = ["BASELINES", "DEFAULT_METRICS", "Plan", "choose_metrics", "make_plan"]

#: Metrics computed when none are named: every registered metric computable from cells except
#: the distributional ones (``energy_distance``, ``mmd``), which need a PCA of the cells, and
#: scGen's (:data:`~celltwin.eval.SCGEN_METRICS`); name them to get them.
DEFAULT_METRICS: tuple[str, ...] = tuple(
    name
    for name, metric in METRICS.items()
    if metric.kinds <= CELL_KINDS and "cells" not in metric.kinds and name not in SCGEN_METRICS
)

#: What each baseline predicts (recorded in ``params['baselines']``).
BASELINES = {
    "control": "the truth's control cells predicted for every perturbation",
    "mean": "cell-eval's VCC baseline: every perturbation predicted as n copies of the "
    "equal-weight mean of the training centroids (control included) of its context, n = its "
    "true cell count; controls = the truth's",
}


@dataclass
class Plan:
    """Validated, aligned inputs: what to compute, on which rows and genes."""

    genes: NDArray[np.str_]
    truth_X: Any
    truth_units: NDArray[np.str_]
    truth_context: NDArray[np.str_]
    pred_X: Any
    pred_units: NDArray[np.str_]
    pred_context: NDArray[np.str_]
    pred_is_pseudobulk: bool
    train: tuple[Any, NDArray[np.str_], NDArray[np.str_]] | None  # X, units, context
    contexts: list[str]
    perturbations: dict[str, NDArray[np.str_]]  # context -> sorted unit labels evaluated
    metrics: list[Metric]
    # The ceiling is the truth predicting itself: its metrics do not depend on the prediction's
    # kind (a pseudobulk prediction skips the DE metrics; their ceiling is still computed).
    ceiling_metrics: list[Metric]
    skipped: dict[str, str]
    params: dict[str, Any]
    has_dose: bool
    seed: int


def choose_metrics(
    names: Sequence[str] | None, *, pseudobulk: bool, has_train: bool
) -> tuple[list[Metric], dict[str, str]]:
    """The metrics to compute, and ``{name: reason}`` for those that cannot be here."""
    chosen = [get_metric(n) for n in (DEFAULT_METRICS if names is None else names)]
    if not chosen:
        raise ValueError("'metrics' is empty; name at least one (see celltwin.eval.list_metrics())")
    keep, skipped = [], {}
    for metric in chosen:
        needs = set(metric.needs)
        if pseudobulk and needs & NEEDS_PRED_CELLS:
            skipped[metric.name] = (
                "needs predicted cells (DE test or cell distribution of the prediction); the "
                "prediction holds pseudobulk profiles"
            )
        elif not metric.kinds <= CELL_KINDS:
            skipped[metric.name] = (
                "needs inputs that cells do not give (the true interactions of combinations); "
                "compute it with celltwin.eval.interaction_pearson"
            )
        elif "reference" in needs and not has_train:
            skipped[metric.name] = (
                "needs the Systema reference (mean of the training perturbation centroids): "
                "pass train="
            )
        else:
            keep.append(metric)
    if not keep:
        raise ValueError(
            f"none of the metrics {[m.name for m in chosen]} can be computed here: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    return keep, skipped


def make_plan(
    truth: AnnData,
    pred: AnnData,
    *,
    train: AnnData | None,
    metrics: Sequence[str] | None,
    allow_missing: bool,
    seed: int,
) -> Plan:
    """Validate the inputs (every problem at once) and plan what to compute."""
    for obj, role in ((truth, "truth"), (pred, "pred"), (train, "train")):
        if obj is not None and not isinstance(obj, AnnData):
            raise TypeError(f"{role!r} must be an AnnData (got {type(obj).__name__})")
    kind = check_kind(pred)
    pseudobulk = kind == "pseudobulk"
    chosen, skipped = choose_metrics(metrics, pseudobulk=pseudobulk, has_train=train is not None)
    ceiling_metrics = (
        choose_metrics(metrics, pseudobulk=False, has_train=train is not None)[0]
        if pseudobulk
        else chosen
    )
    problems, pred_cols, train_cols = input_problems(truth, pred, train)
    if problems:
        raise ValidationError(problems)
    truth_units, truth_context = unit_labels(truth.obs), truth.obs[CONTEXT].astype(str).to_numpy()
    pred_units, pred_context = unit_labels(pred.obs), pred.obs[CONTEXT].astype(str).to_numpy()
    match = match_units(truth_units, truth_context, pred_units, pred_context)
    problems = pairing_problems(match, allow_missing=allow_missing)
    if problems:
        raise ValidationError(problems)
    perturbations = {c: p for c, p in match.perturbations.items() if p.size}
    if not perturbations:
        raise ValidationError([_nothing_shared(truth_units, pred_units)])
    train_data = None
    if train is not None:
        assert train_cols is not None
        train_data = (
            columns(train.X, train_cols),
            unit_labels(train.obs),
            train.obs[CONTEXT].astype(str).to_numpy(),
        )
    return Plan(
        genes=truth.var_names.to_numpy().astype(str),
        truth_X=truth.X,
        truth_units=truth_units,
        truth_context=truth_context,
        pred_X=columns(pred.X, pred_cols),
        pred_units=pred_units,
        pred_context=pred_context,
        pred_is_pseudobulk=pseudobulk,
        train=train_data,
        contexts=sorted(perturbations),
        perturbations=perturbations,
        metrics=chosen,
        ceiling_metrics=ceiling_metrics,
        skipped=skipped,
        params=_params(truth, pred, train, chosen, match, perturbations, kind=kind),
        has_dose=any(DOSE_JOIN in u for u in np.unique(truth_units).tolist()),
        seed=int(seed),
    )


def _nothing_shared(truth_units: NDArray[np.str_], pred_units: NDArray[np.str_]) -> Problem:
    return Problem(
        "nothing_shared",
        "the truth and the prediction share no perturbation",
        f"truth e.g. {preview(np.unique(truth_units)[:5])}; prediction e.g. "
        f"{preview(np.unique(pred_units)[:5])}",
        "check that both use the same labels and contexts (canonical names)",
    )


def _params(
    truth: AnnData,
    pred: AnnData,
    train: AnnData | None,
    chosen: Sequence[Metric],
    match: Match,
    perturbations: Mapping[str, NDArray[np.str_]],
    *,
    kind: str,
) -> dict[str, Any]:
    """What is computed and how, recorded in ``Evaluation.params`` (JSON values)."""
    notes = []
    if pred.n_vars > truth.n_vars:
        notes.append(
            f"{pred.n_vars - truth.n_vars} gene(s) of the prediction absent from the truth ignored"
        )
    if not match.pred_has_control:
        notes.append(
            "the prediction has no control cells: the truth's control cells serve as the "
            "predicted control (deltas, DE of the prediction)"
        )
    dropped_contexts = sorted(set(match.perturbations) - set(perturbations))
    if dropped_contexts:
        notes.append(f"contexts without shared perturbations dropped: {dropped_contexts}")
    info = pred.uns.get(UNS_KEY, {}).get("prediction", {})
    return {
        "metrics": [m.name for m in chosen],
        "prediction_kind": kind,
        "model": str(info.get("model", "prediction")) if isinstance(info, Mapping) else "",
        "pred_control": "prediction" if match.pred_has_control else "truth",
        "contexts": sorted(perturbations),
        "n_perturbations": int(sum(p.size for p in perturbations.values())),
        "n_genes": int(truth.n_vars),
        "dropped": (
            {"absent_from_prediction": match.missing, "absent_from_truth": match.extra}
            if (match.missing or match.extra)
            else {}
        ),
        "baselines": {
            name: text for name, text in BASELINES.items() if name == "control" or train is not None
        },
        "ceiling_note": "split halves of the truth at half depth (no Spearman-Brown correction)",
        "notes": notes,
        "celltwin_version": __version__,
    }
