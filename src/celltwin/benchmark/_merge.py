"""Merge benchmark runs of the same suite made on disjoint folds (e.g. in parallel processes)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._leaderboard import Leaderboard
from ._suite import get_suite

#: Files of a run folder that a merge reads.
_RUN_FILES = ("run.json", "results.csv", "timings.csv")


def merge_runs(
    runs: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    report: bool = False,
) -> Leaderboard:
    """Merge run folders of one suite into one leaderboard, as if it had been one run.

    Folds are independent (each model is fitted on each fold's training data alone, with seeds
    that depend on the run's seed and the fold, not on which other folds ran), so running folds
    in separate processes or on separate machines and merging gives the numbers a single run
    would. Confidence intervals and paired comparisons are recomputed over all merged folds.

    Parameters
    ----------
    runs
        Folders written by :func:`celltwin.benchmark.run_benchmark` or by an earlier merge, same
        suite, suite version and seed, and no (fold, model) pair in two of them.
    out
        Folder for the merged ``leaderboard.csv``, ``results.csv``, ``timings.csv``,
        ``leaderboard.md`` and ``run.json`` (which keeps every source run's record under
        ``merged_from``).
    report
        Also write ``report.html`` (without the per-fold figures, which need the predictions).

    Returns
    -------
    Leaderboard
        The merged leaderboard.
    """
    if len(runs) < 1:
        raise ValueError("merge_runs needs at least one run folder")
    records, results, timings = [], [], []
    for run in map(Path, runs):
        missing = [f for f in _RUN_FILES if not (run / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{run} is not a finished benchmark run (missing {', '.join(missing)}); "
                "pass folders written by `celltwin benchmark --out`"
            )
        source = json.loads((run / "run.json").read_text())
        # A merged folder contributes the runs it was merged from, so merges can be merged.
        records.extend(source.get("merged_from", [source]))
        # round_trip: the merged values are bit-identical to the source runs'.
        frame = pd.read_csv(
            run / "results.csv", keep_default_na=False, na_values=[""], float_precision="round_trip"
        )
        results.append(frame.drop(columns=["suite"], errors="ignore"))
        timings.append(pd.read_csv(run / "timings.csv"))
    first = records[0]
    for key, what in ((("suite", "name"), "suite"), (("suite", "version"), "suite version")):
        values = {str(r[key[0]][key[1]]) for r in records}
        if len(values) > 1:
            raise ValueError(f"runs differ in {what}: {sorted(values)}; merge runs of one suite")
    seeds = {int(r["call"]["seed"]) for r in records}
    if len(seeds) > 1:
        raise ValueError(f"runs differ in seed: {sorted(seeds)}; rerun with one --seed")
    seed = seeds.pop()
    timing = pd.concat(timings, ignore_index=True)
    twice = timing[timing.duplicated(["fold", "model"], keep=False)]
    if not twice.empty:
        pairs = sorted({f"{f}/{m}" for f, m in zip(twice["fold"], twice["model"], strict=True)})
        raise ValueError(
            f"(fold, model) pairs appear in more than one run: {pairs}; merge runs of disjoint folds"
        )
    suite = get_suite(first["suite"]["name"])
    record: dict[str, Any] = {
        "command": ["celltwin.benchmark.merge_runs", *map(str, runs)],
        "suite": first["suite"],
        "versions": first.get("versions"),
        "machine": first.get("machine"),
        "call": {"seed": seed},
        "merged_from": records,
        # Runs may have run side by side: the merged wall time is the longest run's, the CPU
        # time is the sum.
        "timings": {
            "total_s": max(float(r["timings"]["total_s"]) for r in records),
            "cpu_s": sum(float(r["timings"]["cpu_s"]) for r in records),
            "load_average_start": first["timings"].get("load_average_start"),
        },
    }
    board = Leaderboard.from_results(
        pd.concat(results, ignore_index=True),
        suite=suite,
        timings=timing,
        record=record,
        seed=seed,
    )
    board.write(out, report=report)
    return board
