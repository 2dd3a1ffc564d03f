"""The benchmark runner: every fold, every model, fitted on the fold's training data only.

:func:`run_benchmark` checks the call, runs the suite's folds (:mod:`._folds`: each model fitted
and measured on its own, by default in a fresh process, :mod:`._isolation`), and writes the
leaderboard (:class:`~celltwin.benchmark.Leaderboard`) with the run's record (:mod:`._provenance`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._progress import progress_bar
from ..models import available
from ._folds import TIMING_COLUMNS, FoldRun, FoldSettings, run_cells_fold, run_signature_fold
from ._leaderboard import Leaderboard
from ._provenance import Clock, run_record
from ._suites._registry import Suite, get_suite, suites


# Over 60 lines only by its numpy docstring: the body (checks, folds, record, files) is 44.
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
        Run each model-fold in a fresh process (honest memory numbers; see
        :mod:`celltwin.benchmark._measure`). ``False`` runs in this process.
    report
        Write ``report.html`` (figures take a few seconds).
    **options
        Suite options (see ``get_suite(suite).options``), e.g. ``smoke=True``.

    Returns
    -------
    Leaderboard
    """
    spec = get_suite(suite)
    opts, chosen_folds, chosen_models = _check_call(spec, options, folds=folds, models=models)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock()
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out_dir)) if isolate else None
    settings = FoldSettings(
        suite=suite,
        models=chosen_models,
        seed=seed,
        options=opts,
        isolate=isolate,
        workdir=work,
        progress=progress,
    )
    try:
        runs, fold_seconds = _run_folds(spec, chosen_folds, settings)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    results = pd.concat([r.results for r in runs], ignore_index=True) if runs else pd.DataFrame()
    timings = [t for r in runs for t in r.timings]
    timing = pd.DataFrame(timings).reindex(columns=list(TIMING_COLUMNS))
    call = {
        "suite": suite,
        "models": chosen_models,
        "folds": chosen_folds,
        "seed": seed,
        "isolate": isolate,
        "options": opts,
    }
    record = run_record(call, suite=spec, clock=clock, fold_seconds=fold_seconds, timing=timing)
    cell_runs = runs if spec.task is not None else []
    board = Leaderboard.from_results(
        results, suite=spec, timings=timing, record=record, seed=seed, folds=cell_runs
    )
    board.write(out_dir, report=report)
    return board


def _check_call(
    spec: Suite,
    options: Mapping[str, Any],
    *,
    folds: Sequence[str] | None,
    models: Sequence[str] | None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The suite's options (JSON-safe), folds and models of a call; unknown ones raise."""
    unknown_options = sorted(set(options) - set(spec.options)) if spec.options else []
    if unknown_options:
        raise ValueError(
            f"unknown option(s) {unknown_options} for suite {spec.name!r}; it takes "
            f"{sorted(spec.options)}"
        )
    opts = _coerce_options(options)
    all_folds = spec.folds(**opts)
    chosen_folds = list(all_folds if folds is None else folds)
    unknown = [f for f in chosen_folds if f not in all_folds]
    if unknown:
        raise ValueError(f"unknown fold(s) {unknown} of suite {spec.name!r}; folds: {all_folds}")
    chosen_models = list(spec.models if models is None else models)
    if not chosen_models:
        raise ValueError(f"no models to run; the suite's default models are {list(spec.models)}")
    return opts, chosen_folds, chosen_models


def _run_folds(
    spec: Suite, folds: Sequence[str], settings: FoldSettings
) -> tuple[list[FoldRun], dict[str, float]]:
    """Every fold in turn: what each produced and its wall-clock seconds."""
    runs: list[FoldRun] = []
    seconds: dict[str, float] = {}
    iterator: Sequence[str] = folds
    if settings.progress:
        iterator = progress_bar(folds, desc=spec.name)
    for fold in iterator:
        t0 = time.perf_counter()
        if spec.task is not None:
            runs.append(run_cells_fold(spec.task, fold, settings))
        else:
            runs.append(run_signature_fold(spec, fold, settings))
        seconds[fold] = time.perf_counter() - t0
    return runs, seconds


def _coerce_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copies of the options (tuples become lists, paths strings) for the record and
    child processes."""

    def default(value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else list(value)

    return json.loads(json.dumps(dict(options), default=default))


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
    """The model registry (:func:`celltwin.models.available`) with the suites running each model
    by default (``suites``, comma-separated)."""
    table = available().reset_index()
    table["suites"] = [
        ",".join(s.name for s in suites() if name in s.models) for name in table["name"]
    ]
    return table
