"""Peers on Kang 2018: State and scGen next to context_shift on a held-out cell type.

Holds out one context's stimulated cells (``celltwin.split.split_contexts``), keeps the 2,000
most variable genes of the *training* cells (scanpy, ``flavor="seurat"``), fits each model on
the training cells, predicts the held-out context's stimulated cells from its control cells and
scores them with celltwin's metrics: PearsonΔ over all genes and over the top-20 DE genes
(GEARS), the energy distance in a 50-PC space fitted on the true cells, and the spread of the
predicted cells (their total variance over the true stimulated cells'; 1 = matched).

Each model runs in its own process under ``/usr/bin/time -v`` (when present) so wall time and
peak memory are its own::

    python benchmarks/peers_smoke.py                          # kang2018 via celltwin.data.load
    python benchmarks/peers_smoke.py --data /path/to/file.h5ad --context CD4T
    python benchmarks/peers_smoke.py --models scgen --param scgen.max_epochs=50

Peers need ``pip install 'celltwin[peers]'``; a model whose run fails is reported with its
error instead of numbers.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

DEFAULT_MODELS = ("context_shift", "scgen", "state")


def load_data(source: str) -> tuple[Any, str]:
    """The canonical data and a label saying where it came from."""
    if source == "kang2018":
        import celltwin.data

        return celltwin.data.load("kang2018", progress=False), "kang2018 (celltwin.data.load)"
    import celltwin.io

    return celltwin.io.read(source), f"{source} (celltwin.io.read)"


def fold(adata: Any, context: str, n_hvg: int) -> Any:
    """Split off the context's perturbed cells; keep the top HVGs of the training cells."""
    import scanpy as sc

    from celltwin._keys import SPLIT, TRAIN, UNS_KEY
    from celltwin.split import split_contexts

    adata = adata.copy()
    if SPLIT in adata.obs:
        del adata.obs[SPLIT]
    adata.uns.get(UNS_KEY, {}).pop("splits", None)
    split_contexts(adata, test=context)
    train = adata[adata.obs[SPLIT].to_numpy() == TRAIN].copy()
    hvg = sc.pp.highly_variable_genes(train, n_top_genes=n_hvg, flavor="seurat", inplace=False)
    return adata[:, train.var_names[hvg["highly_variable"].to_numpy()]].copy()


def score(adata: Any, pred: Any, context: str) -> dict[str, float]:
    """PearsonΔ (all genes, top-20 DE) and energy distance of the held-out context."""
    from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST
    from celltwin.eval import build_inputs, compute_metrics

    obs = adata.obs
    in_context = obs[CONTEXT].astype(str).to_numpy() == context
    is_control = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    is_test = obs[SPLIT].astype(str).to_numpy() == TEST
    truth_rows = in_context & (is_control | is_test)
    true_x = adata.X[truth_rows]
    true_labels = obs[PERTURBATION].astype(str).to_numpy()[truth_rows]
    # The prediction's control cells are the true ones (as every model predicts "control").
    control_x = adata.X[in_context & is_control]
    stack = sp.vstack if sp.issparse(control_x) else np.vstack
    pred_x = stack([sp.csr_matrix(pred.X) if sp.issparse(control_x) else pred.X, control_x])
    pred_labels = np.concatenate(
        [pred.obs[PERTURBATION].astype(str).to_numpy(), np.full(control_x.shape[0], CONTROL)]
    )
    inputs = build_inputs(
        pred_x,
        true_x,
        pred_labels=pred_labels,
        true_labels=true_labels,
        genes=adata.var_names,
        kinds=("pseudobulk", "de", "cells"),
        max_cells=None,
    )
    values = compute_metrics(
        inputs, metrics=("pearson_delta", "pearson_delta_top20_de", "energy_distance")
    )
    out = {name: float(np.mean(v)) for name, v in values.items()}
    # Spread of the predicted cells: their total variance over the true cells' (1 = matched).
    true_stim = true_x[true_labels != CONTROL]
    out["variance_ratio"] = _total_variance(pred.X) / _total_variance(true_stim)
    return out


def _total_variance(x: Any) -> float:
    dense = np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)
    return float(dense.var(axis=0).sum())


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Fit, predict and score one model (the child process)."""
    from celltwin.models import conditions_of, get_model

    adata, label = load_data(args.data)
    data = fold(adata, args.context, args.n_hvg)
    params = _params(args.param, args.run)
    model = _model(args.run, params, get_model)
    start = time.perf_counter()
    model.fit(data)
    fit_seconds = time.perf_counter() - start
    conditions = conditions_of(data, split="test")
    start = time.perf_counter()
    pred = model.predict(data, conditions=conditions, seed=0)
    predict_seconds = time.perf_counter() - start
    return {
        "model": args.run,
        "data": label,
        "context": args.context,
        "n_genes": int(data.n_vars),
        "n_train_cells": int(model.n_train_cells_),
        "n_predicted_cells": int(pred.n_obs),
        "params": {k: v for k, v in model.get_params().items() if v is not None},
        "trained": {  # steps (State) or epochs per perturbation (scGen) actually run
            k: v
            for k, v in pred.uns["celltwin"]["prediction"].items()
            if k in ("n_steps", "epochs")
        },
        "fit_seconds": round(fit_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        **score(data, pred, args.context),
    }


def _model(name: str, params: dict[str, Any], get_model: Any) -> Any:
    # The peers may not be registered yet; build them from their classes then.
    try:
        return get_model(name, **params)
    except KeyError:
        from celltwin.models._peers import ScGenModel, StateTransitionModel

        peers = {"scgen": ScGenModel, "state": StateTransitionModel}
        return peers[name](**params)


def _params(pairs: list[str], model: str) -> dict[str, Any]:
    """``model.key=value`` options of this model, values parsed as JSON when they parse."""
    out: dict[str, Any] = {}
    for pair in pairs:
        target, _, value = pair.partition("=")
        name, _, key = target.partition(".")
        if name != model:
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each model in a child process, timed by /usr/bin/time -v when it exists."""
    rows = []
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, __file__, "--run", name, "--json", str(out)]
            cmd += ["--data", args.data, "--context", args.context, "--n-hvg", str(args.n_hvg)]
            cmd += [x for p in args.param for x in ("--param", p)]
            if timer:
                cmd = ["/usr/bin/time", "-v", *cmd]
            print(f"running {name} ...", file=sys.stderr, flush=True)
            done = subprocess.run(cmd, capture_output=True, text=True)
            row: dict[str, Any] = {"model": name}
            if out.exists():
                row.update(json.loads(out.read_text()))
            else:
                # The child's own output, without /usr/bin/time's report after it.
                own = [
                    line
                    for line in done.stderr.split("\tCommand being timed")[0].splitlines()
                    if line.strip() and not line.startswith("Command exited with")
                ]
                row["error"] = own[-25:] or [f"exit status {done.returncode}"]
            row.update(_time_v(done.stderr))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _time_v(stderr: str) -> dict[str, Any]:
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    out: dict[str, Any] = {}
    if wall:
        hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
        out["wall_seconds"] = round(hours * 3600 + minutes * 60 + seconds, 1)
    if rss:
        out["peak_rss_gb"] = round(int(rss.group(1)) / 2**20, 2)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | PearsonΔ | PearsonΔ top-20 DE | energy distance | variance ratio | fit s "
        "| wall s | peak GB |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error'][-1]} | | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['pearson_delta']:.3f} | {r['pearson_delta_top20_de']:.3f} | "
            f"{r['energy_distance']:.3f} | {r['variance_ratio']:.2f} | {r['fit_seconds']:.0f} | "
            f"{r.get('wall_seconds', '')} "
            f"| {r.get('peak_rss_gb', '')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="kang2018", help="'kang2018' or an .h5ad path")
    parser.add_argument("--context", default="CD4_T", help="context held out")
    parser.add_argument("--n-hvg", type=int, default=2000)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument(
        "--param", action="append", default=[], help="model.key=value, e.g. scgen.max_epochs=50"
    )
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        Path(args.json).write_text(json.dumps(run_one(args)))
        return
    rows = run_all(args)
    print(table(rows))


if __name__ == "__main__":
    main()
