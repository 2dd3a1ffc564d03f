"""Paired comparisons of two models on a benchmark run's per-unit results, with t intervals.

The units of the real suites are few (5-27 held-out conditions), so the interval is Student's t
over the paired per-unit differences (and, beside it, over the per-fold mean differences).

    python benchmarks/suites_compare.py RUN_DIR --metric pearson_delta --a transition \\
        --b mean [--category unseen_single]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def t_interval(diff: np.ndarray) -> tuple[float, float, float, int]:
    """Mean of ``diff`` with its Student's t 95% interval."""
    diff = diff[np.isfinite(diff)]
    n = diff.size
    mean = float(diff.mean()) if n else np.nan
    if n < 2:
        return mean, np.nan, np.nan, n
    half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def compare(
    run: Path, *, metric: str, a: str, b: str, category: str | None = None
) -> dict[str, object]:
    """``a - b`` on ``metric`` over the units both scored (lower-is-better metrics not flipped)."""
    res = pd.read_csv(run / "results.csv", keep_default_na=False, na_values=[""])
    res = res[(res["metric"] == metric) & res["model"].isin([a, b])]
    if category is not None:
        res = res[res["category"].astype(str) == category]
    wide = res.pivot_table(
        index=["fold", "context", "perturbation"], columns="model", values="value"
    ).dropna()
    if a not in wide or b not in wide:
        raise SystemExit(f"{a} or {b} has no {metric} units in {run}")
    diff = (wide[a] - wide[b]).to_numpy()
    folds = (wide[a] - wide[b]).groupby(level="fold").mean().to_numpy()
    mean, lo, hi, n = t_interval(diff)
    _, flo, fhi, nf = t_interval(folds)
    return {
        "run": run.name,
        "metric": metric if category is None else f"{metric}[{category}]",
        "a": a,
        "b": b,
        "a_mean": float(wide[a].mean()),
        "b_mean": float(wide[b].mean()),
        "diff": mean,
        "t_lo": lo,
        "t_hi": hi,
        "units": n,
        "fold_t_lo": flo,
        "fold_t_hi": fhi,
        "folds": nf,
        "a_better_share": float((diff > 0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--category")
    args = parser.parse_args()
    row = compare(args.run, metric=args.metric, a=args.a, b=args.b, category=args.category)
    print(
        f"{row['run']} {row['metric']}: {row['a']} {row['a_mean']:.3f} - {row['b']} "
        f"{row['b_mean']:.3f} = {row['diff']:+.3f}, t 95% CI [{row['t_lo']:+.3f}, "
        f"{row['t_hi']:+.3f}] over {row['units']} units (over {row['folds']} folds: "
        f"[{row['fold_t_lo']:+.3f}, {row['fold_t_hi']:+.3f}]); {row['a']} better on "
        f"{100 * row['a_better_share']:.0f}%"
    )


if __name__ == "__main__":
    main()
