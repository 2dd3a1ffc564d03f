"""``transition`` with ``gene_prior="auto"`` (GO+STRING here) against the old default ``"data"``
on papalexi2021-heldout-ko: per fold and per held-out knockout, paired.

    python benchmarks/prior_default.py --old DIR [DIR ...] --new DIR [DIR ...]

Each DIR is the output of ``celltwin benchmark papalexi2021-heldout-ko --models transition``
(folds may be split over several runs). Prints, per metric: the mean over folds of each side as
the leaderboard computes it (each side on the knockouts it predicted), the paired difference
over the knockouts both predicted (mean, Student's t 95% CI), and the knockouts only the new
default predicts.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

UNIT_METRICS = {"mae": -1, "des": 1, "pds": 1, "pearson_delta": 1}


def _read(dirs: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(f"{d}/results.csv", keep_default_na=False) for d in dirs]
    table = pd.concat(frames, ignore_index=True)
    return table[table["model"] == "transition"]


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", nargs="+", required=True)
    parser.add_argument("--new", nargs="+", required=True)
    args = parser.parse_args()
    old, new = _read(args.old), _read(args.new)
    folds = sorted(set(old["fold"]) & set(new["fold"]))
    print(f"folds: {folds}")
    vcc = [t[(t["metric"] == "vcc_score") & t["fold"].isin(folds)] for t in (old, new)]
    paired = vcc[1].set_index("fold")["value"] - vcc[0].set_index("fold")["value"]
    m, lo, hi = _t_interval(paired.to_numpy(float))
    print(
        f"vcc_score (per fold): old {vcc[0]['value'].mean():.3f}, new {vcc[1]['value'].mean():.3f};"
        f" new - old {m:+.3f} [t 95% CI {lo:+.3f}, {hi:+.3f}] over {len(paired)} folds"
    )
    for metric, sign in UNIT_METRICS.items():
        a = old[(old["metric"] == metric) & old["fold"].isin(folds)]
        b = new[(new["metric"] == metric) & new["fold"].isin(folds)]
        a = a.groupby(["fold", "perturbation"])["value"].mean()
        b = b.groupby(["fold", "perturbation"])["value"].mean()
        both = a.index.intersection(b.index)
        diff = (b[both] - a[both]).to_numpy(float)
        m, lo, hi = _t_interval(diff)
        only = b.index.difference(a.index)
        print(
            f"{metric}: fold means old {a.groupby(level=0).mean().mean():.3f} ({len(a)} units),"
            f" new {b.groupby(level=0).mean().mean():.3f} ({len(b)} units); on the {len(both)}"
            f" shared units new - old {m:+.4f} [t {lo:+.4f}, {hi:+.4f}]"
            f" ({'higher' if sign > 0 else 'lower'} is better); new only:"
            f" {', '.join(f'{p} {b[(f, p)]:.3f}' for f, p in only)}"
        )


if __name__ == "__main__":
    main()
