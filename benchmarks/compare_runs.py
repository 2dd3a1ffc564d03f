"""Compare two benchmark output folders value by value (a refactor must not move a number).

    python benchmarks/compare_runs.py BEFORE_DIR AFTER_DIR [--tol 1e-9]

Rows of ``results.csv`` are matched on (suite, fold, model, context, perturbation, metric); the
script prints how many matched, the rows found on one side only, the largest absolute difference
and every row over the tolerance (NaN on both sides counts as equal). Exit code 1 when any row is
missing on one side or differs by more than the tolerance.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

KEY = ["suite", "fold", "model", "context", "perturbation", "metric"]


def compare(before: str, after: str, *, tol: float) -> int:
    """Print the comparison of two runs' results.csv; return the number of problems."""
    ra = pd.read_csv(f"{before}/results.csv", keep_default_na=False)
    rb = pd.read_csv(f"{after}/results.csv", keep_default_na=False)
    merged = ra.merge(rb, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    one_side = merged[merged["_merge"] != "both"]
    both = merged[merged["_merge"] == "both"].copy()
    va = pd.to_numeric(both["value_a"], errors="coerce").to_numpy(float)
    vb = pd.to_numeric(both["value_b"], errors="coerce").to_numpy(float)
    diff = np.where(np.isnan(va) & np.isnan(vb), 0.0, np.abs(va - vb))
    both["absdiff"] = diff
    over = both[~(diff <= tol)]
    largest = float(np.nanmax(diff)) if diff.size else 0.0
    print(
        f"{before} vs {after}: rows {len(ra)} / {len(rb)}; matched {len(both)}; "
        f"on one side only {len(one_side)}; max |diff| {largest:.3g}; over {tol:g}: {len(over)}"
    )
    if len(one_side):
        print(one_side[[*KEY, "_merge"]].head(20).to_string())
    if len(over):
        worst = over.sort_values("absdiff", ascending=False)
        print(worst[[*KEY, "value_a", "value_b", "absdiff"]].head(30).to_string())
    return len(one_side) + len(over)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args()
    sys.exit(1 if compare(args.before, args.after, tol=args.tol) else 0)


if __name__ == "__main__":
    main()
