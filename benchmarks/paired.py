"""Paired bootstrap comparison of two models of a finished benchmark run, on any metric.

The leaderboard pairs the best learned model with the best baseline on the suite's primary
metric only; this pairs any two models on any metric the run recorded, optionally within one
category (e.g. ``combo_seen2`` of ``sim-combinations``, the combinations ``additive`` can
predict). Units are (fold, context, perturbation) where the metric is per perturbation, else
folds; the CI resamples units (:func:`celltwin.eval.paired_comparison`, 95%, seed 0).
Several runs (e.g. the same suite at several ``--seed``) are pooled as separate units, or with
``--average-runs`` each unit is first averaged over the runs (repeats of one fold are not
independent units). With ``--small-n`` it adds the comparison's two checks that do not lean on
the bootstrap, whose percentile interval is too narrow when there are few units (e.g. 7 folds):
Student's t interval of the mean difference and the Wilcoxon signed-rank test
(:class:`celltwin.eval.PairedComparison`).

    .venv/bin/python benchmarks/paired.py RUN_DIR [RUN_DIR ...] --a transition --b additive \\
        --metric interaction_pearson --category combo_seen2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.benchmark import higher_is_better
from celltwin.eval import paired_comparison


def compare(
    runs: list[Path],
    *,
    a: str,
    b: str,
    metric: str,
    category: str | None,
    average_runs: bool = False,
    small_n: bool = False,
) -> str:
    frames = []
    for i, run in enumerate(runs):
        if not (run / "results.csv").is_file():
            raise SystemExit(f"{run} has no results.csv: pass the --out folder of a benchmark run")
        frame = pd.read_csv(run / "results.csv", keep_default_na=False, na_values=[""])
        if not average_runs:
            frame["fold"] = f"run{i}/" + frame["fold"].astype(str)
        frames.append(frame)
    res = pd.concat(frames, ignore_index=True)
    res = res[res["metric"] == metric]
    if category is not None:
        res = res[res["category"].astype(str) == category]
    if res.empty:
        raise SystemExit(f"no {metric!r} values{f' in category {category!r}' if category else ''}")
    keys = ["fold", CONTEXT, PERTURBATION]
    wide = res.pivot_table(index=keys, columns="model", values="value", aggfunc="mean")
    for m in (a, b):
        if m not in wide.columns:
            raise SystemExit(f"model {m!r} has no {metric!r} values (has: {list(wide.columns)})")
    wide = wide[[a, b]].dropna()
    pc = paired_comparison(
        wide[a].to_numpy(), wide[b].to_numpy(), higher_is_better=higher_is_better(metric), seed=0
    )
    where = f" [{category}]" if category else ""
    line = (
        f"{metric}{where}: {a} − {b} = {pc.mean_diff:.3f} [95% CI {pc.ci_low:.3f}, "
        f"{pc.ci_high:.3f}] over {pc.n} paired units; {a} better on {pc.share_a_better:.0%}, "
        f"{b} on {pc.share_b_better:.0%}"
        + (
            f" ({'averaged' if average_runs else 'pooled'} over {len(runs)} runs)"
            if len(runs) > 1
            else ""
        )
    )
    if small_n:
        line += (
            f"\nsmall-n checks: t 95% CI [{pc.t_low:.3f}, {pc.t_high:.3f}] (df {pc.n - 1}); "
            f"Wilcoxon signed-rank p = {pc.wilcoxon_p:.3f}"
        )
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", type=Path, nargs="+", help="output folder(s) of `celltwin benchmark`"
    )
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--category", default=None)
    parser.add_argument(
        "--average-runs", action="store_true", help="average each unit over the runs first"
    )
    parser.add_argument(
        "--small-n", action="store_true", help="add a t interval and a Wilcoxon signed-rank test"
    )
    args = parser.parse_args()
    print(
        compare(
            args.runs,
            a=args.a,
            b=args.b,
            metric=args.metric,
            category=args.category,
            average_runs=args.average_runs,
            small_n=args.small_n,
        )
    )


if __name__ == "__main__":
    main()
