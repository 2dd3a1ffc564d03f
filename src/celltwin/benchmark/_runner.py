"""The benchmark runner: every fold, every model, fitted on the fold's training data only.

:func:`run_benchmark` loops over a suite's folds. For a cell suite (a suite with a
:class:`~celltwin.benchmark._cell_suites.CellTask`) it builds the fold once
(:class:`~celltwin.benchmark._features.FoldData`), then fits and predicts each model on its own,
timing it and measuring its memory, and scores all predictions in one step
(:func:`score_fold`). Other suites (signatures) are run through their ``run_fold``, one model
per call, timed and measured the same way.

Time and memory
---------------
By default (``isolate=True``) each model-fold runs in a fresh Python process. For a cell suite
the parent writes the fold's ``train`` and ``query`` cells to a private folder (never the truth),
the child reads them, fits, predicts and writes the prediction back. The child reports

* ``fit_s``, ``predict_s``: wall-clock seconds of ``fit`` and ``predict``;
* ``peak_rss_mb``: the process's resident-set high-water mark at the end (``VmHWM``);
* ``peak_delta_mb``: that high-water mark minus the resident set just before ``fit``, with the
  high-water mark reset there (Linux ``/proc/self/clear_refs``, value 5): the extra memory
  fit + predict needed at their peak, numpy/torch buffers included (``tracemalloc`` would see
  only Python allocations). Where the reset is not available the delta is measured from the
  process's peak so far (``resource.getrusage``), an upper bound, flagged in ``memory_method``.

With ``isolate=False`` models run in this process (faster, for tests): the same numbers are
taken, but freed memory that the allocator reuses does not show up again, so the delta can be
lower than the model's real need.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION
from ..models import UnseenConditionError
from ._leaderboard import EFFECT_INTERVAL_COVERAGE
from ._suite import RESULT_COLUMNS, Suite, get_suite

if TYPE_CHECKING:
    from ._cell_suites import CellTask
    from ._features import FoldData
    from ._leaderboard import Leaderboard

#: Model name of the split-half noise-ceiling rows.
CEILING = "ceiling"
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


# --- memory and time ------------------------------------------------------------------------


def _status_kb(field_name: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_kb() -> float:
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak / 1024.0 if sys.platform == "darwin" else peak  # macOS reports bytes


@contextmanager
def measure() -> Iterator[dict[str, Any]]:
    """Measure the wall time and the peak resident memory of the enclosed block.

    Yields a dict filled on exit with ``seconds`` (wall clock), ``cpu_s`` (CPU time of this
    process, all threads), ``peak_rss_mb``, ``peak_delta_mb`` and ``memory_method``
    (``"vmhwm_reset"`` or ``"maxrss"``; see the module docstring).
    """
    stats: dict[str, Any] = {}
    rss0 = _status_kb("VmRSS")
    method = "maxrss"
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets the high-water mark to the current resident set
        method = "vmhwm_reset"
    except OSError:
        pass
    if rss0 is None:
        rss0 = _maxrss_kb()
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        yield stats
    finally:
        stats["seconds"] = time.perf_counter() - start
        stats["cpu_s"] = time.process_time() - cpu
        peak = _status_kb("VmHWM") if method == "vmhwm_reset" else None
        if peak is None:
            peak, method = _maxrss_kb(), "maxrss"
        stats["peak_rss_mb"] = peak / 1024.0
        stats["peak_delta_mb"] = max(peak - rss0, 0.0) / 1024.0
        stats["memory_method"] = method


# --- fitting and predicting one model ----------------------------------------------------------


def predict_conditions(
    model: Any, query: AnnData, conditions: pd.DataFrame, *, seed: int
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
    import anndata as ad

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
    (:func:`effect_interval_coverage`). Timed apart from fit and predict (not in the timings).
    """
    if pred is None or not hasattr(model, "predict_effects"):
        return None
    keys = [c for c in (CONTEXT, PERTURBATION, DOSE) if c in pred.obs.columns]
    conditions = pred.obs[keys].astype(str).drop_duplicates().reset_index(drop=True)
    try:
        return model.predict_effects(query, conditions=conditions, seed=seed)
    except UnseenConditionError:
        return None


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
    return pd.DataFrame(rows, columns=["model", CONTEXT, PERTURBATION, "metric", "value"])


def _col_mean(x: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    sub = x[np.flatnonzero(rows)][:, cols]
    return np.asarray(sub.mean(axis=0), dtype=float).ravel()


def _unit_label(row: Mapping[str, Any]) -> str:
    dose = str(row.get(DOSE, "") or "")
    return f"{row[PERTURBATION]}@{dose}" if dose and dose != "nan" else str(row[PERTURBATION])


def _fit_predict(
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
        pred, refused = predict_conditions(model, fold.query, fold.conditions, seed=seed)
        predict_s = time.perf_counter() - start
    effects = predict_intervals(model, fold.query, pred, seed=seed)
    return (
        pred,
        effects,
        {
            "fit_s": fit_s,
            "predict_s": predict_s,
            "total_s": total["seconds"],
            "cpu_s": total["cpu_s"],
            "peak_rss_mb": total["peak_rss_mb"],
            "peak_delta_mb": total["peak_delta_mb"],
            "memory_method": total["memory_method"],
            "n_refused": len(refused),
            "refused": refused,
        },
    )


def _write_fold_inputs(fold: FoldData, folder: Path) -> None:
    """What a model process may read: training cells, query cells, the conditions to predict."""
    folder.mkdir(parents=True, exist_ok=True)
    fold.train.write_h5ad(folder / "train.h5ad")
    fold.query.write_h5ad(folder / "query.h5ad")
    fold.conditions.to_csv(folder / "conditions.csv", index=False)


def _fit_predict_process(
    suite: str,
    name: str,
    folder: Path,
    *,
    seed: int,
    fit_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> tuple[AnnData | None, AnnData | None, dict[str, Any]]:
    """Fit and predict in a fresh Python process reading only ``folder`` (see module doc).

    ``fit_kwargs`` are passed as files: DataFrames as CSV (index kept), anything else as JSON.
    """
    import anndata as ad

    out = folder / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    frames, plain = {}, {}
    for key, value in fit_kwargs.items():
        if isinstance(value, pd.DataFrame):
            value.to_csv(out / f"fit_{key}.csv")
            frames[key] = f"fit_{key}.csv"
        else:
            plain[key] = value
    request = {
        "suite": suite,
        "model": name,
        "seed": seed,
        "params": dict(params),
        "fit_frames": frames,
        "fit_plain": plain,
        "inputs": str(folder),
        "out": str(out),
    }
    (out / "request.json").write_text(json.dumps(request, default=str))
    stats = _run_child("_child_main", out)
    pred_path, effects_path = out / "pred.h5ad", out / "effects.h5ad"
    pred = ad.read_h5ad(pred_path) if pred_path.exists() else None
    effects = ad.read_h5ad(effects_path) if effects_path.exists() else None
    return pred, effects, stats


def _run_child(entry: str, out: Path) -> dict[str, Any]:
    """Run ``entry`` of this module on ``out/request.json`` in a fresh process; its stats."""
    code = f"from celltwin.benchmark._runner import {entry}; {entry}()"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out / "request.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    stats_path = out / "stats.json"
    if done.returncode != 0 or not stats_path.exists():
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise RuntimeError(f"model process exited with {done.returncode}: {' | '.join(tail)}")
    stats = json.loads(stats_path.read_text())
    if stats.get("error"):
        raise _ChildError(stats["error"])
    return stats


class _ChildError(RuntimeError):
    """An exception raised in a model process, carried back as text."""


def _child_main() -> None:
    """Entry point of a model process: read the request, fit, predict, write, report."""
    import anndata as ad

    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path(request["out"])
    stats: dict[str, Any] = {}
    try:
        from ._features import FoldData

        task = get_suite(request["suite"]).task
        assert task is not None
        inputs = Path(request["inputs"])
        train = ad.read_h5ad(inputs / "train.h5ad")
        query = ad.read_h5ad(inputs / "query.h5ad")
        conditions = pd.read_csv(inputs / "conditions.csv", dtype=str, keep_default_na=False)
        conditions["n_cells"] = conditions["n_cells"].astype(np.int64)
        # The truth is not among the inputs: this process cannot read it.
        fold = FoldData(
            name="",
            train=train,
            query=query,
            truth=AnnData(),
            conditions=conditions,
            genes=list(train.var_names),
        )
        fit_kwargs = dict(request["fit_plain"])
        for key, filename in request["fit_frames"].items():
            fit_kwargs[key] = pd.read_csv(out / filename, index_col=0, keep_default_na=False)
        pred, effects, stats = _fit_predict(
            task,
            request["model"],
            fold,
            seed=int(request["seed"]),
            fit_kwargs=fit_kwargs,
            params=request["params"],
        )
        if pred is not None:
            pred.write_h5ad(out / "pred.h5ad")
        if effects is not None:
            effects.write_h5ad(out / "effects.h5ad")
    # Reported to the parent, which records the model as failed. SystemExit too: Lightning (the
    # peers' trainer) turns a SIGTERM into one, which would end the process without a word.
    except (Exception, SystemExit) as err:
        stats = {"error": _describe(err)}
    (out / "stats.json").write_text(json.dumps(stats, default=str))


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, SystemExit):
        text += " (the model process was asked to stop, e.g. by a SIGTERM)"
    return text


def _run_fold_process(
    suite: str, fold: str, name: str, *, seed: int, options: Mapping[str, Any], folder: Path
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A suite's ``run_fold`` for one model in a fresh process (suites without a task)."""
    out = folder / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    request = {"suite": suite, "fold": fold, "model": name, "seed": seed, "options": options}
    (out / "request.json").write_text(json.dumps(request, default=list))
    stats = _run_child("_child_fold_main", out)
    results = pd.read_csv(out / "results.csv", dtype={CONTEXT: str, PERTURBATION: str})
    return results, stats


def _child_fold_main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[1]).parent
    try:
        suite = get_suite(request["suite"])
        with measure() as total:
            results = suite.run_fold(
                request["fold"],
                models=[request["model"]],
                seed=int(request["seed"]),
                progress=False,
                **request["options"],
            )
        results.to_csv(out / "results.csv", index=False)
        stats = {
            "fit_s": np.nan,
            "predict_s": np.nan,
            "total_s": total["seconds"],
            "cpu_s": total["cpu_s"],
            "peak_rss_mb": total["peak_rss_mb"],
            "peak_delta_mb": total["peak_delta_mb"],
            "memory_method": total["memory_method"],
            "n_refused": 0,
        }
    except (Exception, SystemExit) as err:
        stats = {"error": _describe(err)}
    (out / "stats.json").write_text(json.dumps(stats, default=str))


# --- scoring ----------------------------------------------------------------------------------------


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
    of :data:`~celltwin.benchmark._cell_suites.SUITE_METRICS` that the registry does not know
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
    from ..eval import METRICS
    from ..eval._evaluate import evaluate

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
            frames.append(agg.loc[:, ["model", CONTEXT, PERTURBATION, "metric", "value"]])
        if "vcc_score" in metrics:
            value = result.scores.get("vcc_score", np.nan)
            frames.append(_fold_row(model, "vcc_score", value))
    local = [m for m in metrics if m not in METRICS and m in _suite_metrics()]
    if local:
        frames.append(_suite_metric_rows(fold, predictions, local, seed=seed, ceiling=ceiling))
    columns = ["model", CONTEXT, PERTURBATION, "metric", "value"]
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


def _suite_metrics() -> dict[str, Any]:
    from ._cell_suites import SUITE_METRICS

    return SUITE_METRICS


def _fold_row(model: str, metric: str, value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"model": [model], CONTEXT: [""], PERTURBATION: [""], "metric": [metric], "value": [value]}
    )


def _long(values: pd.DataFrame, model: str) -> pd.DataFrame:
    """An evaluation's long table as result rows (``perturbation@dose`` when dosed)."""
    if values.empty:
        return pd.DataFrame(columns=["model", CONTEXT, PERTURBATION, "metric", "value"])
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
    from ..eval import build_inputs, compute_metrics, rank_sum_test, split_half_ceiling

    chosen = [_suite_metrics()[n] for n in names]
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
            kind = pred.uns.get("celltwin", {}).get("prediction", {}).get("kind", "cells")
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
                import dataclasses

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
    return pd.DataFrame(rows, columns=["model", CONTEXT, PERTURBATION, "metric", "value"])


# --- one fold ---------------------------------------------------------------------------------------


@dataclass
class FoldRun:
    """What one fold of a cell suite produced."""

    name: str
    results: pd.DataFrame
    timings: list[dict[str, Any]] = field(default_factory=list)
    evaluations: dict[str, Any] = field(default_factory=dict)


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


def _run_cells_fold(
    task: CellTask,
    fold_name: str,
    *,
    models: Sequence[str],
    seed: int,
    options: Mapping[str, Any],
    isolate: bool,
    workdir: Path | None,
    suite_name: str,
    progress: bool = False,
) -> FoldRun:
    fold = task.fold_data(fold_name, **options)
    if isolate:
        assert workdir is not None
        folder = workdir / _safe(fold_name)
        _write_fold_inputs(fold, folder)
    predictions: dict[str, AnnData] = {}
    intervals: dict[str, AnnData] = {}
    timings: list[dict[str, Any]] = []
    names: Sequence[str] = models
    if progress:
        from tqdm.auto import tqdm

        names = tqdm(list(models), desc=f"{suite_name} {fold_name}", leave=False)
    for name in names:
        row: dict[str, Any] = {"fold": fold_name, "model": name}
        reason = task.skip_reason(name)
        if reason:
            timings.append({**row, "status": "skipped", "reason": reason})
            continue
        try:
            fit_kwargs = task.model_fit_kwargs(name, fold, options)
            params = task.model_params(name, options)
            if isolate:
                pred, effects, stats = _fit_predict_process(
                    suite_name, name, folder, seed=seed, fit_kwargs=fit_kwargs, params=params
                )
            else:
                pred, effects, stats = _fit_predict(
                    task, name, fold, seed=seed, fit_kwargs=fit_kwargs, params=params
                )
        except Exception as err:  # one failing model must not sink the benchmark
            timings.append({**row, "status": "error", "reason": f"{type(err).__name__}: {err}"})
            continue
        refused = stats.pop("refused", [])
        n_predicted = (
            0
            if pred is None
            else len(set(zip(pred.obs[CONTEXT].astype(str), unit_labels(pred.obs), strict=True)))
        )
        status = "ok" if not refused else ("refused" if pred is None else "partial")
        reason = (
            f"refused {len(refused)} of {len(fold.conditions)}: {refused[0]}" if refused else ""
        )
        timings.append(
            {**row, **stats, "status": status, "reason": reason, "n_predicted": n_predicted}
        )
        if pred is not None:
            predictions[name] = pred
        if effects is not None:
            intervals[name] = effects
    results, evaluations = score_fold(fold, predictions, metrics=task.metrics, seed=seed)
    if intervals:
        results = pd.concat([results, effect_interval_coverage(fold, intervals)], ignore_index=True)
    if task.extra_scores is not None and task.truth_extra is not None:
        extra = task.extra_scores(fold, predictions, task.truth_extra(task.options(options)))
        results = pd.concat([results, extra], ignore_index=True)
    categories = _categories(fold)
    results["category"] = [
        categories.get((c, p), "")
        for c, p in zip(
            results[CONTEXT].astype(str), results[PERTURBATION].astype(str), strict=True
        )
    ]
    results.insert(0, "fold", fold_name)
    return FoldRun(
        name=fold_name,
        results=results.loc[:, list(UNIT_COLUMNS)],
        timings=timings,
        evaluations=evaluations,
    )


def run_cell_fold(
    task: CellTask,
    fold: str,
    *,
    models: Sequence[str] | None = None,
    seed: int = 0,
    **options: Any,
) -> pd.DataFrame:
    """One fold of a cell suite in this process: per-unit results (:data:`RESULT_COLUMNS`)."""
    run = _run_cells_fold(
        task,
        fold,
        models=list(task.models if models is None else models),
        seed=seed,
        options=options,
        isolate=False,
        workdir=None,
        suite_name=task.name,
    )
    return run.results.loc[:, list(RESULT_COLUMNS)]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _run_signature_fold(
    suite: Suite,
    fold: str,
    *,
    models: Sequence[str],
    seed: int,
    options: Mapping[str, Any],
    isolate: bool,
    workdir: Path | None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A suite without a task: ``run_fold`` once per model; reference rows kept once."""
    frames, timings = [], []
    seen_reference = False
    for name in models:
        row: dict[str, Any] = {"fold": fold, "model": name}
        try:
            if isolate:
                assert workdir is not None
                results, stats = _run_fold_process(
                    suite.name,
                    fold,
                    name,
                    seed=seed,
                    options=options,
                    folder=workdir / _safe(fold),
                )
            else:
                with measure() as total:
                    results = suite.run_fold(
                        fold, models=[name], seed=seed, progress=False, **options
                    )
                stats = {
                    "total_s": total["seconds"],
                    "cpu_s": total["cpu_s"],
                    "peak_rss_mb": total["peak_rss_mb"],
                    "peak_delta_mb": total["peak_delta_mb"],
                    "memory_method": total["memory_method"],
                }
        except Exception as err:
            timings.append({**row, "status": "error", "reason": f"{type(err).__name__}: {err}"})
            continue
        own = results["model"].astype(str) == name
        if not seen_reference:
            frames.append(results)
            seen_reference = True
        else:
            frames.append(results.loc[own])
        n_predicted = int(results.loc[own, [CONTEXT, PERTURBATION]].drop_duplicates().shape[0])
        timings.append({**row, **stats, "status": "ok", "reason": "", "n_predicted": n_predicted})
    out = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(RESULT_COLUMNS))
    )
    out = out.loc[:, list(RESULT_COLUMNS)].copy()
    out["category"] = ""
    return out, timings


# --- the benchmark ---------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("celltwin", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = ""
    try:
        out["torch"] = version("torch")
    except PackageNotFoundError:
        out["torch"] = ""
    return out


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    mem = _meminfo_total_gb()
    if mem is not None:
        info["memory_gb"] = mem
    return info


def _meminfo_total_gb() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(float(line.split()[1]) / 1024**2, 1)
    except OSError:
        return None
    return None


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[3]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _coerce_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copies of the options (tuples become lists, paths strings) for the record and
    child processes."""

    def default(value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else list(value)

    return json.loads(json.dumps(dict(options), default=default))


def run_benchmark(
    suite: str,
    *,
    models: Sequence[str] | None = None,
    folds: Sequence[str] | None = None,
    out: str | os.PathLike[str],
    seed: int = 0,
    progress: bool = True,
    isolate: bool = True,
    report: bool = True,
    **options: Any,
) -> Leaderboard:
    """Run a benchmark suite and write its leaderboard, results, report and run record.

    Parameters
    ----------
    suite
        A registered suite (:func:`celltwin.benchmark.suites`).
    models
        Models to run (default: the suite's). Each is fitted on every fold's training data only.
    folds
        Folds to run (default: all).
    out
        Output folder; gets ``leaderboard.csv`` (suite, fold, model, metric, value),
        ``results.csv`` (one row per unit), ``timings.csv``, ``leaderboard.md``, ``report.html``
        and ``run.json``.
    seed
        Seed of every model and of the evaluation (bootstrap, split halves, cell draws); the
        same seed writes the same ``leaderboard.csv`` and ``results.csv``.
    progress
        Show progress bars.
    isolate
        Run each model-fold in a fresh process (honest memory numbers; see the module
        docstring). ``False`` runs in this process.
    report
        Write ``report.html`` (figures take a few seconds).
    **options
        Suite options (see ``get_suite(suite).options``), e.g. ``smoke=True``.

    Returns
    -------
    Leaderboard
    """
    from ._leaderboard import Leaderboard

    spec = get_suite(suite)
    unknown_options = sorted(set(options) - set(spec.options)) if spec.options else []
    if unknown_options:
        raise ValueError(
            f"unknown option(s) {unknown_options} for suite {suite!r}; it takes "
            f"{sorted(spec.options)}"
        )
    opts = _coerce_options(options)
    all_folds = spec.folds(**opts)
    chosen_folds = list(all_folds if folds is None else folds)
    unknown = [f for f in chosen_folds if f not in all_folds]
    if unknown:
        raise ValueError(f"unknown fold(s) {unknown} of suite {suite!r}; folds: {all_folds}")
    chosen_models = list(spec.models if models is None else models)
    if not chosen_models:
        raise ValueError(f"no models to run; the suite's default models are {list(spec.models)}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    cpu_start = _cpu_seconds()
    load_start = _load_average()
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out_dir)) if isolate else None
    frames: list[pd.DataFrame] = []
    timings: list[dict[str, Any]] = []
    fold_seconds: dict[str, float] = {}
    evaluations: list[FoldRun] = []
    iterator: Sequence[str] = chosen_folds
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(chosen_folds, desc=suite)
    try:
        for fold in iterator:
            t0 = time.perf_counter()
            if spec.task is not None:
                run = _run_cells_fold(
                    spec.task,
                    fold,
                    models=chosen_models,
                    seed=seed,
                    options=opts,
                    isolate=isolate,
                    workdir=work,
                    suite_name=suite,
                    progress=progress,
                )
                frames.append(run.results)
                timings += run.timings
                evaluations.append(run)
            else:
                results, fold_timings = _run_signature_fold(
                    spec,
                    fold,
                    models=chosen_models,
                    seed=seed,
                    options=opts,
                    isolate=isolate,
                    workdir=work,
                )
                frames.append(results)
                timings += fold_timings
            fold_seconds[fold] = time.perf_counter() - t0
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    timing = pd.DataFrame(timings).reindex(columns=list(TIMING_COLUMNS))
    record = {
        "command": list(sys.argv),
        "call": {
            "suite": suite,
            "models": chosen_models,
            "folds": chosen_folds,
            "seed": seed,
            "isolate": isolate,
            "options": opts,
        },
        "suite": {
            "name": spec.name,
            "version": spec.version,
            "kind": spec.kind,
            "data": spec.data,
            "metrics": list(spec.metrics),
        },
        "versions": _versions(),
        "git_commit": _git_commit(),
        "machine": _machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "timings": {
            "total_s": time.time() - started,
            # This process and every model process it waited for, all threads.
            "cpu_s": _cpu_seconds() - cpu_start,
            "load_average_start": load_start,
            "load_average_end": _load_average(),
            "per_fold_s": fold_seconds,
            "per_model_s": {
                str(m): float(g["total_s"].fillna(0).sum())
                for m, g in timing.groupby("model", sort=True)
            },
        },
    }
    board = Leaderboard.from_results(
        results, suite=spec, timings=timing, record=record, seed=seed, folds=evaluations
    )
    board.write(out_dir, report=report)
    return board


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """Suite options from ``KEY=VALUE`` strings (``--option`` on the command line).

    Values are read as JSON when they parse (``true``, ``3``, ``0.5``, ``["B", "myeloid"]``),
    ``none``/``null`` as ``None``, anything else as a string.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"options are written KEY=VALUE (got {item!r}), e.g. smoke=true")
        text = text.strip()
        if text.lower() in ("none", "null"):
            value: Any = None
        elif text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
        out[key.strip()] = value
    return out


def list_models() -> pd.DataFrame:
    """The model registry (:func:`celltwin.models.available`) plus the suite-local models."""
    from ..models import available
    from ._suite import suites

    table = available().reset_index()
    table["suites"] = ""
    rows = []
    for s in suites():
        if s.task is None:
            continue
        for name in s.task.local_models:
            rows.append(
                {
                    "name": name,
                    "description": (s.task.local_models[name].__doc__ or "").strip().split("\n")[0],
                    "reference": "",
                    "predicts": s.task.local_models[name].predicts,
                    "handles_unseen": "",
                    "class": s.task.local_models[name].__name__,
                    "extra": "",
                    "installed": True,
                    "suites": s.name,
                }
            )
    table["suites"] = [
        ",".join(s.name for s in suites() if name in s.models) for name in table["name"]
    ]
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
