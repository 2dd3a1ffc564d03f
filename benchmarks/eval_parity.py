"""Parity of celltwin.eval with cell-eval 0.8.x (the Virtual Cell Challenge scorer), and DE speed.

Parity: simulates a VCC-shaped truth (perturbations x cells from a negative-binomial model,
log1p-normalised, target gene knocked down) and three predictions (good, mediocre, poor), plus the
cell-eval baseline (every perturbation predicted as the mean of the training centroids). Each is
scored by cell-eval (``MetricsEvaluator(...).compute(profile="vcc")`` and ``score_agg_metrics``) and
by celltwin on the same h5ad files; per-perturbation MAE, DES and PDS, the DE tables and the final
VCC score are compared.

cell-eval may live in another environment: it is run in a subprocess with ``--cell-eval-python``
(default: ``$CELL_EVAL_PYTHON``, else this interpreter if it can import ``cell_eval``).

Usage::

    python benchmarks/eval_parity.py --cell-eval-python /tmp/ce/bin/python
    python benchmarks/eval_parity.py --de-speed     # timing of the DE engine only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celltwin._keys import CONTROL, PERTURBATION, TARGET_SUM
from celltwin.eval._de import rank_sum_test
from celltwin.eval._metrics import mean_of_centroids, vcc_score
from celltwin.eval._registry import VCC_METRICS, build_inputs, compute_metrics

# cell-eval's names for the three VCC metrics.
CELL_EVAL_NAMES = {"mae": "mae", "des": "overlap_at_N", "pds": "discrimination_score_l1"}


# --- simulation -----------------------------------------------------------------------------------


def _log_normalise(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    return np.log1p(counts / np.maximum(totals, 1) * TARGET_SUM).astype(np.float32)


def _sample(rng, base, lfc, n_cells, dispersion=4.0):
    """Negative-binomial counts (gamma-Poisson) with per-cell size factors."""
    size = rng.lognormal(0.0, 0.3, size=(n_cells, 1))
    mean = base[None, :] * np.exp(lfc)[None, :] * size
    return rng.poisson(rng.gamma(dispersion, mean / dispersion))


def simulate(
    seed: int = 0,
    n_perts: int = 50,
    n_train: int = 30,
    n_control: int = 1000,
    n_genes: int = 2000,
    cells_per_pert: int = 100,
) -> dict[str, ad.AnnData]:
    """Truth, training data, three predictions and the cell-eval baseline, as AnnData."""
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{j:04d}" for j in range(n_genes)])
    base = rng.lognormal(-1.0, 1.5, size=n_genes).clip(0.01, 50)
    expressed = np.flatnonzero(base > 0.5)
    targets = rng.choice(genes[expressed], n_perts + n_train, replace=False)
    shared = np.where(rng.random(n_genes) < 0.05, rng.normal(0, 0.6, n_genes), 0.0)
    lfcs = {}
    for i, t in enumerate(targets):
        effect = np.where(rng.random(n_genes) < 0.04, rng.normal(0, 1.0, n_genes), 0.0)
        strength = rng.uniform(0.0, 1.5) if i % 5 else 0.05  # some perturbations do ~nothing
        lfc = strength * (effect + shared)
        lfc[genes == t] = -2.0
        lfcs[t] = lfc
    test, train = targets[:n_perts], targets[n_perts:]

    def block(labels_lfcs, n_cells):
        xs, labs = [], []
        for label, lfc in labels_lfcs:
            xs.append(_log_normalise(_sample(rng, base, lfc, n_cells)))
            labs += [label] * n_cells
        return np.vstack(xs), np.array(labs)

    zero = np.zeros(n_genes)
    ctrl_x, ctrl_lab = block([(CONTROL, zero)], n_control)

    def adata(x, lab):
        a = ad.AnnData(
            X=x, obs=pd.DataFrame({PERTURBATION: lab}, index=[f"c{i}" for i in range(len(lab))])
        )
        a.var_names = genes
        return a

    truth_x, truth_lab = block([(t, lfcs[t]) for t in test], cells_per_pert)
    out = {"truth": adata(np.vstack([truth_x, ctrl_x]), np.append(truth_lab, ctrl_lab))}
    train_x, train_lab = block([(t, lfcs[t]) for t in train], cells_per_pert)
    train_ctrl, train_ctrl_lab = block([(CONTROL, zero)], n_control)
    train_all = np.vstack([train_x, train_ctrl])
    train_labels = np.append(train_lab, train_ctrl_lab)
    out["train"] = adata(train_all, train_labels)

    shuffled = rng.permutation(test)
    predicted_lfcs = {
        "good": {t: lfcs[t] for t in test},
        "mediocre": {
            t: 0.5 * lfcs[t] + np.where(rng.random(n_genes) < 0.05, rng.normal(0, 0.5, n_genes), 0)
            for t in test
        },
        "poor": {t: 0.3 * lfcs[s] for t, s in zip(test, shuffled, strict=True)},
    }
    for name, plfc in predicted_lfcs.items():
        x, lab = block([(t, plfc[t]) for t in test], cells_per_pert)
        out[name] = adata(np.vstack([x, ctrl_x]), np.append(lab, ctrl_lab))
    # cell-eval's baseline: every cell of every perturbation is the mean of the training centroids
    # (control included, as build_base_mean_adata does), plus the true control cells.
    profile = mean_of_centroids(train_all, train_labels).astype(np.float32)
    n_pert_cells = len(truth_lab)
    out["baseline"] = adata(
        np.vstack([np.repeat(profile[None, :], n_pert_cells, axis=0), ctrl_x]),
        np.append(truth_lab, ctrl_lab),
    )
    return out


# --- the two scorers ------------------------------------------------------------------------------

_CELL_EVAL_SCRIPT = r"""
import json, sys, polars as pl
from cell_eval import MetricsEvaluator
from cell_eval._score import score_agg_metrics
cfg = json.loads(sys.argv[1])
aggs = {}
for name in cfg["preds"]:
    ev = MetricsEvaluator(
        adata_pred=f"{cfg['dir']}/{name}.h5ad", adata_real=f"{cfg['dir']}/truth.h5ad",
        control_pert=cfg["control"], pert_col=cfg["pert_col"], num_threads=cfg["threads"],
        outdir=f"{cfg['dir']}/ce_{name}",
    )
    results, agg = ev.compute(profile="vcc", basename="results.csv")
    aggs[name] = agg
for name in cfg["preds"]:
    if name == "baseline":
        continue
    score = score_agg_metrics(aggs[name], aggs["baseline"])
    score.write_csv(f"{cfg['dir']}/ce_{name}/score.csv")
"""


def run_cell_eval(directory: Path, names: list[str], python: str, threads: int = 2) -> float:
    cfg = {
        "dir": str(directory),
        "preds": names,
        "control": CONTROL,
        "pert_col": PERTURBATION,
        "threads": threads,
    }
    start = time.perf_counter()
    subprocess.run([python, "-c", _CELL_EVAL_SCRIPT, json.dumps(cfg)], check=True)
    return time.perf_counter() - start


def run_celltwin(data: dict[str, ad.AnnData], names: list[str]) -> tuple[dict, float]:
    truth = data["truth"]
    start = time.perf_counter()
    true_labels = truth.obs[PERTURBATION].to_numpy()
    true_de = rank_sum_test(truth.X, true_labels)
    out = {}
    for name in names:
        pred = data[name]
        inputs = build_inputs(
            pred.X,
            truth.X,
            pred_labels=pred.obs[PERTURBATION].to_numpy(),
            true_labels=true_labels,
            genes=truth.var_names.to_numpy(),
            kinds=("pseudobulk", "de"),
            true_de=true_de,
        )
        values = compute_metrics(inputs, metrics=VCC_METRICS)
        out[name] = (inputs, pd.DataFrame(values, index=inputs.perturbations))
    return out, time.perf_counter() - start


def _de_parity(directory: Path, name: str, inputs) -> dict[str, float]:
    """Largest differences between cell-eval's DE tables (pdex) and ours."""
    out = {}
    for side, de in (("real", inputs.true_de), ("pred", inputs.pred_de)):
        frame = pd.read_csv(directory / f"ce_{name}" / f"{side}_de.csv")
        rows = pd.Index(de.groups).get_indexer(frame["target"].astype(str))
        cols = pd.Index(inputs.genes).get_indexer(frame["feature"].astype(str))
        for col, ours in (("p_value", de.pvalue), ("fdr", de.fdr), ("statistic", de.statistic)):
            out[f"{side}_{col}"] = float(np.max(np.abs(frame[col].to_numpy() - ours[rows, cols])))
        theirs = frame["log2_fold_change"].to_numpy()
        mine = de.log2_fold_change[rows, cols]
        finite = np.isfinite(theirs) & np.isfinite(mine)
        same_inf = np.array_equal(np.isinf(theirs), np.isinf(mine))
        out[f"{side}_lfc_rel"] = float(
            np.max(np.abs(theirs[finite] - mine[finite]) / np.maximum(1.0, np.abs(mine[finite])))
        )
        out[f"{side}_lfc_inf_match"] = float(same_inf)
    return out


def parity(directory: Path, python: str, seed: int) -> int:
    data = simulate(seed=seed)
    names = ["good", "mediocre", "poor", "baseline"]
    for key, a in data.items():
        a.write_h5ad(directory / f"{key}.h5ad")
    ce_seconds = run_cell_eval(directory, names, python)
    mine, ct_seconds = run_celltwin(data, names)

    worst = {"mae": 0.0, "des": 0.0, "pds": 0.0}
    means = {}
    for name in names:
        theirs = pd.read_csv(directory / f"ce_{name}" / "results.csv").set_index("perturbation")
        ours = mine[name][1]
        theirs = theirs.loc[ours.index]
        row = {}
        for metric in VCC_METRICS:
            diff = np.abs(theirs[CELL_EVAL_NAMES[metric]].to_numpy() - ours[metric].to_numpy())
            worst[metric] = max(worst[metric], float(diff.max()))
            row[f"{metric}_ours"] = float(ours[metric].mean())
            row[f"{metric}_cell_eval"] = float(theirs[CELL_EVAL_NAMES[metric]].mean())
            row[f"{metric}_max_abs_diff"] = float(diff.max())
        means[name] = row
        de = _de_parity(directory, name, mine[name][0])
        print(f"[{name}] DE parity: " + ", ".join(f"{k}={v:.2e}" for k, v in de.items()))
    table = pd.DataFrame(means).T
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.6g}"))

    base = means["baseline"]
    print("\nVCC score (cell-eval avg_score vs ours):")
    for name in ("good", "mediocre", "poor"):
        ce = pd.read_csv(directory / f"ce_{name}" / "score.csv").set_index("metric")
        ce_score = float(ce.loc["avg_score", "from_baseline"])
        ours = vcc_score(
            mae=means[name]["mae_ours"],
            des=means[name]["des_ours"],
            pds=means[name]["pds_ours"],
            baseline_mae=base["mae_ours"],
            baseline_des=base["des_ours"],
            baseline_pds=base["pds_ours"],
        )
        print(
            f"  {name:9s} cell-eval {ce_score:.6f}  celltwin {ours:.6f}  diff {abs(ce_score - ours):.1e}"
        )
    print(f"\nmax |diff| per perturbation: {worst}")
    print(
        f"time: cell-eval {ce_seconds:.1f} s (subprocess, incl. import), celltwin {ct_seconds:.1f} s"
    )
    ok = worst["mae"] <= 1e-6 and worst["des"] <= 1e-3 and worst["pds"] <= 1e-3
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


# --- DE speed -------------------------------------------------------------------------------------


def de_speed(
    seed: int = 0,
    n_groups: int = 200,
    per_group: int = 100,
    n_control: int = 2000,
    n_genes: int = 18080,
) -> None:
    """Time rank_sum_test on a sparse log1p matrix (about 22% non-zero)."""
    rng = np.random.default_rng(seed)
    n_cells = n_control + n_groups * per_group
    rate = np.exp(rng.normal(-2.0, 1.5, n_genes)).clip(0, 50)
    blocks = []
    for start in range(0, n_genes, 1000):
        r = rate[start : start + 1000]
        counts = rng.poisson(r, size=(n_cells, r.size)).astype(np.float32)
        counts *= rng.uniform(0.5, 2.0, (n_cells, 1)).astype(np.float32)
        blocks.append(sp.csc_matrix(np.log1p(counts)))
    X = sp.hstack(blocks).tocsr()
    labels = np.array(
        [CONTROL] * n_control + [f"g{i:03d}" for i in range(n_groups) for _ in range(per_group)]
    )
    print(
        f"{n_groups} groups x {per_group} cells + {n_control} control x {n_genes} genes, "
        f"CSR float32, {X.nnz / (n_cells * n_genes):.1%} non-zero"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = rank_sum_test(X, labels)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"rank_sum_test: {wall:.1f} s wall, {cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"result: {result.pvalue.shape}, min p {result.pvalue.min():.2e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-eval-python", default=os.environ.get("CELL_EVAL_PYTHON"))
    parser.add_argument("--out", type=Path, default=None, help="folder for h5ad and results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--de-speed", action="store_true", help="only time the DE engine")
    args = parser.parse_args()
    if args.de_speed:
        de_speed(seed=args.seed)
        return 0
    python = args.cell_eval_python
    if python is None:
        if importlib.util.find_spec("cell_eval") is None:
            parser.error("cell-eval not found: pass --cell-eval-python or set CELL_EVAL_PYTHON")
        python = sys.executable
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        return parity(args.out, python, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        return parity(Path(tmp), python, args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
