"""Process isolation: each model-fold in a fresh Python process (the runner's default).

For a cell suite the parent writes the fold's ``train`` and ``query`` cells and the conditions to
predict to a private folder (never the truth); the child reads them, fits, predicts, writes the
prediction back and reports its measurements (:mod:`._measure`) in ``stats.json``. A suite
without a task (signatures) runs its ``run_fold`` for one model in the child. An exception in the
child comes back as text and the model is recorded as failed; the benchmark goes on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION
from ._features import FoldData
from ._measure import measure, measured
from ._model_run import fit_predict
from ._suites._registry import get_suite


def write_fold_inputs(fold: FoldData, folder: Path) -> None:
    """What a model process may read: training cells, query cells, the conditions to predict."""
    folder.mkdir(parents=True, exist_ok=True)
    fold.train.write_h5ad(folder / "train.h5ad")
    fold.query.write_h5ad(folder / "query.h5ad")
    fold.conditions.to_csv(folder / "conditions.csv", index=False)


def fit_predict_process(
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
    code = f"from celltwin.benchmark._isolation import {entry}; {entry}()"
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
    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path(request["out"])
    stats: dict[str, Any] = {}
    try:
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
        pred, effects, stats = fit_predict(
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


def run_fold_process(
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
        stats = {"fit_s": np.nan, "predict_s": np.nan, **measured(total), "n_refused": 0}
    except (Exception, SystemExit) as err:
        stats = {"error": _describe(err)}
    (out / "stats.json").write_text(json.dumps(stats, default=str))
