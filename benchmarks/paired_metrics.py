"""One model against the best baseline on every metric of a finished run, with paired CIs.

For each metric (and, with ``--by-context``, each value of the results' ``context`` column, e.g.
the three tasks of ``lincs-doses``) it pairs model ``--a`` with each baseline on the same units
(fold, context, perturbation) and reports the difference to the best baseline of that metric:
mean, bootstrap 95% CI, Student's t 95% interval and the Wilcoxon p
(:func:`celltwin.eval.paired_comparison`), plus the fit+predict wall time per fold of each model
from ``timings.csv`` when the run wrote it.

    .venv/bin/python benchmarks/paired_metrics.py RUN_DIR --a signature_blend \\
        --baselines mean_other_perturbations,mean_other_contexts [--by-context]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.eval import paired_comparison

UNIT = ["fold", CONTEXT, PERTURBATION]


def compare(results: pd.DataFrame, *, a: str, baselines: list[str]) -> pd.DataFrame:
    """Rows per metric: model ``a`` minus the best baseline (by mean) on that metric."""
    rows = []
    for metric, block in results.groupby("metric", sort=False):
        wide = block.pivot_table(index=UNIT, columns="model", values="value")
        present = [b for b in baselines if b in wide.columns]
        if a not in wide.columns or not present:
            continue
        best = max(present, key=lambda b: wide[b].mean())
        both = wide[[a, best]].dropna()
        pc = paired_comparison(both[a], both[best], higher_is_better=True)
        rows.append(
            {
                "metric": metric,
                "model": round(float(both[a].mean()), 4),
                "best baseline": best,
                "baseline": round(float(both[best].mean()), 4),
                "diff": round(pc.mean_diff, 4),
                "boot95": f"[{pc.ci_low:.4f}, {pc.ci_high:.4f}]",
                "t95": f"[{pc.t_low:.4f}, {pc.t_high:.4f}]",
                "wilcoxon_p": f"{pc.wilcoxon_p:.2g}",
                "n": pc.n,
                "excludes 0": bool(pc.ci_low > 0 and pc.t_low > 0)
                or bool(pc.ci_high < 0 and pc.t_high < 0),
            }
        )
    return pd.DataFrame(rows)


def fit_times(run: Path) -> pd.DataFrame | None:
    """Mean fit+predict wall seconds per fold of each model (``timings.csv``)."""
    path = run / "timings.csv"
    if not path.is_file():
        return None
    t = pd.read_csv(path)
    col = next((c for c in ("total_s", "wall_s") if c in t.columns), None)
    if col is None:
        return None
    return t.groupby("model")[col].agg(["mean", "sum", "count"]).round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--a", required=True)
    parser.add_argument("--baselines", required=True)
    parser.add_argument("--by-context", action="store_true")
    args = parser.parse_args()
    results = pd.read_csv(args.run / "results.csv")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    groups = results.groupby(CONTEXT, sort=False) if args.by_context else [("all", results)]
    for name, block in groups:
        print(f"\n{args.run.name} [{name}]: {args.a} vs best baseline per metric\n")
        print(compare(block, a=args.a, baselines=baselines).to_markdown(index=False))
    times = fit_times(args.run)
    if times is not None:
        print("\nfit+predict wall s per fold (mean, sum, folds)\n")
        print(times.to_markdown())


if __name__ == "__main__":
    main()
