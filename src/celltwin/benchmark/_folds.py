"""One fold of a suite: every model fitted on the fold's training data only, then scored.

For a cell suite (a suite with a :class:`~celltwin.benchmark.CellTask`) the fold is built once
(:class:`~celltwin.benchmark.FoldData`), each model is fitted and predicts on its own, in a fresh
process (:mod:`._isolation`) or in this one (:mod:`._model_run`), timed and measured, and all
predictions are scored in one step (:func:`~celltwin.benchmark._scoring.score_fold`). A suite
without a task (signatures) runs its ``run_fold`` once per model, timed and measured the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION
from .._progress import progress_bar
from ..eval import Evaluation
from ._features import FoldData
from ._isolation import fit_predict_process, run_fold_process, write_fold_inputs
from ._measure import measure, measured
from ._model_run import fit_predict
from ._scoring import effect_interval_coverage, score_fold, unit_labels
from ._suites._cell_task import CellTask
from ._suites._registry import RESULT_COLUMNS, Suite

#: Per-unit results: :data:`RESULT_COLUMNS` plus the unit's category (``""`` when none).
UNIT_COLUMNS: tuple[str, ...] = (*RESULT_COLUMNS, "category")
#: Columns of the timing table (one row per fold and model).
TIMING_COLUMNS: tuple[str, ...] = (
    "fold",
    "model",
    "status",
    "reason",
    "fit_s",
    "predict_s",
    "total_s",
    "cpu_s",
    "peak_rss_mb",
    "peak_delta_mb",
    "memory_method",
    "n_predicted",
    "n_refused",
)
#: Obs column of a cell's split category (written by :func:`celltwin.split.split_combinations`).
_CATEGORY_COLUMN = "split_category"


@dataclass(frozen=True)
class FoldSettings:
    """How every fold of a run is run.

    Attributes
    ----------
    suite
        Suite name (a model process looks the suite up by it).
    models
        Models to run, in order.
    seed
        Seed of every model and of the evaluation.
    options
        The suite's options (JSON-safe).
    isolate
        Fit each model in a fresh process (:mod:`._isolation`), reading only ``workdir``.
    workdir
        Private folder of the model processes (``isolate=True``).
    progress
        Show a progress bar over the models.
    """

    suite: str
    models: Sequence[str]
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    isolate: bool = False
    workdir: Path | None = None
    progress: bool = False


@dataclass
class FoldRun:
    """What one fold produced: per-unit results, timings, and (cell suites) evaluations."""

    name: str
    results: pd.DataFrame
    timings: list[dict[str, Any]] = field(default_factory=list)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _error_row(row: dict[str, Any], err: Exception) -> dict[str, Any]:
    return {**row, "status": "error", "reason": f"{type(err).__name__}: {err}"}


# --- cell suites -------------------------------------------------------------------------------


def run_cells_fold(task: CellTask, fold_name: str, settings: FoldSettings) -> FoldRun:
    """Build the fold, fit and predict every model on its own, score the predictions."""
    fold = task.fold_data(fold_name, **settings.options)
    folder = None
    if settings.isolate:
        assert settings.workdir is not None
        folder = settings.workdir / _safe(fold_name)
        write_fold_inputs(fold, folder)
    predictions: dict[str, AnnData] = {}
    intervals: dict[str, AnnData] = {}
    timings: list[dict[str, Any]] = []
    names: Sequence[str] = settings.models
    if settings.progress:
        names = progress_bar(list(names), desc=f"{settings.suite} {fold_name}", leave=False)
    for name in names:
        timing, pred, effects = _run_model(task, name, fold, settings, folder)
        timings.append(timing)
        if pred is not None:
            predictions[name] = pred
        if effects is not None:
            intervals[name] = effects
    results, evaluations = _score(task, fold, predictions, intervals, settings)
    return FoldRun(name=fold_name, results=results, timings=timings, evaluations=evaluations)


def _run_model(
    task: CellTask, name: str, fold: FoldData, settings: FoldSettings, folder: Path | None
) -> tuple[dict[str, Any], AnnData | None, AnnData | None]:
    """One model on the fold: its timing row, prediction and effect intervals."""
    row: dict[str, Any] = {"fold": fold.name, "model": name}
    reason = task.skip_reason(name)
    if reason:
        return {**row, "status": "skipped", "reason": reason}, None, None
    try:
        fit_kwargs = task.model_fit_kwargs(name, fold, settings.options)
        params = task.model_params(name, settings.options)
        if folder is not None:
            pred, effects, stats = fit_predict_process(
                settings.suite,
                name,
                folder,
                seed=settings.seed,
                fit_kwargs=fit_kwargs,
                params=params,
            )
        else:
            pred, effects, stats = fit_predict(
                task, name, fold, seed=settings.seed, fit_kwargs=fit_kwargs, params=params
            )
    except Exception as err:  # one failing model must not sink the benchmark
        return _error_row(row, err), None, None
    refused = stats.pop("refused", [])
    n_predicted = (
        0
        if pred is None
        else len(set(zip(pred.obs[CONTEXT].astype(str), unit_labels(pred.obs), strict=True)))
    )
    status = "ok" if not refused else ("refused" if pred is None else "partial")
    reason = f"refused {len(refused)} of {len(fold.conditions)}: {refused[0]}" if refused else ""
    timing = {**row, **stats, "status": status, "reason": reason, "n_predicted": n_predicted}
    return timing, pred, effects


def _score(
    task: CellTask,
    fold: FoldData,
    predictions: Mapping[str, AnnData],
    intervals: Mapping[str, AnnData],
    settings: FoldSettings,
) -> tuple[pd.DataFrame, dict[str, Evaluation]]:
    """Per-unit results (:data:`UNIT_COLUMNS`) of the fold's predictions, and the evaluations."""
    results, evaluations = score_fold(fold, predictions, metrics=task.metrics, seed=settings.seed)
    if intervals:
        results = pd.concat([results, effect_interval_coverage(fold, intervals)], ignore_index=True)
    if task.extra_scores is not None and task.truth_extra is not None:
        extra = task.extra_scores(
            fold, predictions, task.truth_extra(task.options(settings.options))
        )
        results = pd.concat([results, extra], ignore_index=True)
    categories = _categories(fold)
    results["category"] = [
        categories.get((c, p), "")
        for c, p in zip(
            results[CONTEXT].astype(str), results[PERTURBATION].astype(str), strict=True
        )
    ]
    results.insert(0, "fold", fold.name)
    return results.loc[:, list(UNIT_COLUMNS)], evaluations


def _categories(fold: FoldData) -> dict[tuple[str, str], str]:
    obs = fold.truth.obs
    if _CATEGORY_COLUMN not in obs.columns:
        return {}
    labels = unit_labels(obs)
    contexts = obs[CONTEXT].astype(str).to_numpy()
    cats = obs[_CATEGORY_COLUMN].astype(object).to_numpy()
    return {
        (c, p): str(k)
        for c, p, k in zip(contexts, labels, cats, strict=True)
        if isinstance(k, str) and k
    }


def run_cell_fold(
    task: CellTask,
    fold: str,
    *,
    models: Sequence[str] | None = None,
    seed: int = 0,
    **options: Any,
) -> pd.DataFrame:
    """One fold of a cell suite in this process: per-unit results (:data:`RESULT_COLUMNS`)."""
    models = list(task.models if models is None else models)
    settings = FoldSettings(suite=task.name, models=models, seed=seed, options=options)
    return run_cells_fold(task, fold, settings).results.loc[:, list(RESULT_COLUMNS)]


# --- suites without a task (signatures) --------------------------------------------------------


def run_signature_fold(suite: Suite, fold: str, settings: FoldSettings) -> FoldRun:
    """A suite without a task: ``run_fold`` once per model; reference rows kept once."""
    frames, timings = [], []
    seen_reference = False
    for name in settings.models:
        row: dict[str, Any] = {"fold": fold, "model": name}
        try:
            results, stats = _run_suite_model(suite, fold, name, settings)
        except Exception as err:
            timings.append(_error_row(row, err))
            continue
        own = results["model"].astype(str) == name
        if not seen_reference:
            frames.append(results)
            seen_reference = True
        else:
            frames.append(results.loc[own])
        n_predicted = int(results.loc[own, [CONTEXT, PERTURBATION]].drop_duplicates().shape[0])
        timings.append({**row, **stats, "status": "ok", "reason": "", "n_predicted": n_predicted})
    frames = [f for f in frames if not f.empty]  # a model may record no unit of a fold
    out = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(RESULT_COLUMNS))
    )
    out = out.loc[:, list(RESULT_COLUMNS)].copy()
    out["category"] = ""
    return FoldRun(name=fold, results=out, timings=timings)


def _run_suite_model(
    suite: Suite, fold: str, name: str, settings: FoldSettings
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The suite's ``run_fold`` for one model, in a fresh process or in this one, measured."""
    if settings.isolate:
        assert settings.workdir is not None
        return run_fold_process(
            suite.name,
            fold,
            name,
            seed=settings.seed,
            options=settings.options,
            folder=settings.workdir / _safe(fold),
        )
    with measure() as total:
        results = suite.run_fold(
            fold, models=[name], seed=settings.seed, progress=False, **settings.options
        )
    return results, measured(total)
