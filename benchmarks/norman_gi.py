"""Norman 2019 pairs: each model's interaction measures against the paper's, leave one pair out.

For each of the subset's 15 pairs, every model is fitted on all cells but the pair's (its
singles stay when they were measured: 5 pairs; the others' singles were never measured and are
predicted from GO + STRING features, as GEARS predicts them from its GO graph). The model's pair
is then fitted on its singles (:func:`celltwin.eval.interaction_fit`: Theil-Sen coefficients,
magnitude, model fit, distance correlation; class by :func:`celltwin.eval.interaction_class`)
and compared over the pairs with the paper's fit (``norman2019_gi_labels.csv``: ``ts_norm`` on
all genes of the full screen) and with the class GEARS lists. The observed pairs whose singles
were measured are fitted too (the measure on this subset's 500 genes against the paper's).

    python benchmarks/norman_gi.py --models additive,linear,nearest_perturbation,transition \\
        --out benchmarks/notes/norman_gi.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from celltwin._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, PERTURBATION_TYPE
from celltwin.benchmark import predict_conditions
from celltwin.data import load
from celltwin.eval import interaction_class, interaction_fit
from celltwin.models import get_model
from celltwin.priors import gene_embedding

PRIOR_MODELS = ("linear", "nearest_perturbation", "transition")


def _mean(adata, label: str) -> np.ndarray:
    x = adata[adata.obs[PERTURBATION].astype(str).to_numpy() == label].X
    return np.asarray(x.mean(axis=0)).ravel().astype(np.float64)


def _fit(first: np.ndarray, second: np.ndarray, pair: np.ndarray) -> dict:
    fit = interaction_fit(pair, [first, second])
    return {**fit.to_dict(), "gi_class": interaction_class(fit)}


def run(models: list[str], prior: str, seed: int, only: list[str] | None = None) -> pd.DataFrame:
    adata = load("norman2019_subset", progress=False)
    labels = adata.uns["gi_labels"]
    perts = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})
    pairs = [p for p in perts if "+" in p and (only is None or p in only)]
    targets = sorted({g for p in perts for g in p.split("+")})
    features = gene_embedding(prior, genes=targets)
    control = _mean(adata, CONTROL)
    rows = []
    for pair in pairs:
        parts = pair.split("+")
        key = "_".join(sorted(parts))
        paper = labels.loc[key] if key in labels.index else None
        base = {
            "pair": pair,
            "singles_measured": all(p in perts for p in parts),
            "paper_ts_norm": float(paper["ts_norm"]) if paper is not None else np.nan,
            "paper_class": (paper["gears_gi_class"] or "") if paper is not None else "",
        }
        if base["singles_measured"]:
            eff = [_mean(adata, p) - control for p in [*parts, pair]]
            rows.append({**base, "model": "observed", **_fit(*eff)})
        train = adata[adata.obs[PERTURBATION].astype(str).to_numpy() != pair].copy()
        query = train[train.obs[PERTURBATION].astype(str).to_numpy() == CONTROL].copy()
        asked = [pair, *[p for p in parts if p not in perts]]
        conditions = pd.DataFrame(
            {
                CONTEXT: "K562",
                PERTURBATION: asked,
                DOSE: "",
                PERTURBATION_TYPE: "crispra",
                "n_cells": 100,
            }
        )
        for name in models:
            model = get_model(name, **({"seed": seed} if name == "transition" else {}))
            kwargs = {"perturbation_features": features} if name in PRIOR_MODELS else {}
            model.fit(train, split_key=None, **kwargs)
            pred, _ = predict_conditions(model, query, conditions=conditions, seed=seed)
            done = set() if pred is None else set(pred.obs[PERTURBATION].astype(str))
            if not set(asked) <= done:
                continue
            singles = [(_mean(train, p) if p in perts else _mean(pred, p)) - control for p in parts]
            rows.append({**base, "model": name, **_fit(*singles, _mean(pred, pair) - control)})
        print(f"{pair}: done", flush=True)
    return pd.DataFrame(rows)


def _pearson_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, int]:
    """Pearson r with its Fisher-z 95% interval."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    r = float(np.corrcoef(x[ok], y[ok])[0, 1])
    if n <= 3:
        return r, np.nan, np.nan, n
    z, half = np.arctanh(r), 1.96 / np.sqrt(n - 3)
    return r, float(np.tanh(z - half)), float(np.tanh(z + half)), n


def summarize(table: pd.DataFrame) -> str:
    lines = ["| model | pairs | Pearson r of magnitude vs paper ts_norm [95% CI] | Spearman | "
             "class agrees (labelled pairs) |", "|---|---|---|---|---|"]  # fmt: skip
    for model, sub in table.groupby("model", sort=True):
        r, lo, hi, n = _pearson_ci(sub["magnitude"].to_numpy(), sub["paper_ts_norm"].to_numpy())
        rho = stats.spearmanr(sub["magnitude"], sub["paper_ts_norm"]).statistic
        lab = sub[sub["paper_class"] != ""]
        agree = f"{int((lab['gi_class'] == lab['paper_class']).sum())} / {len(lab)}"
        lines.append(f"| {model} | {n} | {r:.2f} [{lo:.2f}, {hi:.2f}] | {rho:.2f} | {agree} |")
    out = "\n".join(lines)
    for model, sub in table.groupby("model", sort=True):
        lab = sub[sub["paper_class"] != ""]
        if len(lab):
            cross = pd.crosstab(lab["paper_class"], lab["gi_class"])
            out += f"\n\nClasses, {model} (rows: GEARS's list; columns: from the fit):\n\n"
            out += cross.to_markdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="additive,linear,nearest_perturbation,transition")
    parser.add_argument("--prior", default="go+string")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", help="comma-separated pairs (default: all 15)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    only = args.pairs.split(",") if args.pairs else None
    table = run(args.models.split(","), args.prior, args.seed, only)
    table.to_csv(args.out, index=False)
    print(summarize(table))


if __name__ == "__main__":
    main()
