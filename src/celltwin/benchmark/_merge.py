"""Combine benchmark runs of one suite: disjoint folds of one seed (:func:`merge_runs`, e.g. run
in parallel processes) or the same folds at several seeds (:func:`average_seeds`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._leaderboard import Leaderboard
from ._suites._registry import get_suite

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
        run_records, run_results, run_timing = _read_run(run)
        records.extend(run_records)
        results.append(run_results)
        timings.append(run_timing)
    first = records[0]
    _check_one_suite(records)
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
    record = _record("merge_runs", runs, records, call={"seed": seed}, merged_from=records)
    board = Leaderboard.from_results(
        pd.concat(results, ignore_index=True),
        suite=suite,
        timings=timing,
        record=record,
        seed=seed,
    )
    board.write(out, report=report)
    return board


def average_seeds(
    runs: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    report: bool = False,
) -> Leaderboard:
    """One leaderboard from a suite run at several seeds, each fold's values averaged over them.

    A model whose training is noisy (a peer such as State moves by several hundredths between
    seeds on one fold) is a noisy opponent at any one seed. Here every unit's value (fold,
    model, context, perturbation, metric) is the mean over the seeds, and the CIs and paired
    comparisons are computed over folds (or units) as for one run: repeats of a fold are not
    independent units, so they are averaged, not pooled.

    Parameters
    ----------
    runs
        One folder per seed, written by :func:`celltwin.benchmark.run_benchmark` or by
        :func:`merge_runs` (merge a seed's fold-by-fold runs first), same suite and version.
    out
        Folder for the averaged ``leaderboard.csv``, ``results.csv``, ``timings.csv`` (each
        fold and model's mean over the seeds), ``leaderboard.md`` and ``run.json`` (which keeps
        every seed's records under ``averaged_from``).
    report
        Also write ``report.html`` (without the per-fold figures).

    Returns
    -------
    Leaderboard
        The averaged leaderboard. A (fold, model) pair missing at some seed is left out at
        all of them, and the leaderboard says so (``record["left_out"]``).
    """
    if len(runs) < 2:
        raise ValueError("average_seeds needs run folders of at least 2 seeds")
    by_seed = _read_seeds(runs)
    all_records = [r for records, _, _ in by_seed.values() for r in records]
    _check_one_suite(all_records)
    pairs = {
        seed: set(zip(results["fold"], results["model"], strict=True))
        for seed, (_, results, _) in by_seed.items()
    }
    common = set.intersection(*pairs.values())
    left_out = sorted(set.union(*pairs.values()) - common)
    results, timing = _average(by_seed, common)
    seeds_sorted = sorted(by_seed)
    left = {
        model: [fold for fold, m in left_out if m == model]
        for model in sorted({m for _, m in left_out})
    }
    record = _record(
        "average_seeds", runs, all_records,
        seeds=seeds_sorted, left_out=left, averaged_from=all_records,
    )  # fmt: skip
    board = Leaderboard.from_results(
        results,
        suite=get_suite(all_records[0]["suite"]["name"]),
        timings=timing,
        record=record,
        seed=seeds_sorted[0],
    )
    board.write(out, report=report)
    return board


_Run = tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]


def _read_seeds(runs: Sequence[str | os.PathLike[str]]) -> dict[int, _Run]:
    """Each folder's records, results and timings, by its seed (one folder per seed)."""
    by_seed: dict[int, _Run] = {}
    for run in map(Path, runs):
        records, results, timing = _read_run(run)
        seeds = {int(r["call"]["seed"]) for r in records}
        if len(seeds) != 1:
            raise ValueError(f"{run} holds runs of seeds {sorted(seeds)}; pass one folder per seed")
        seed = seeds.pop()
        if seed in by_seed:
            raise ValueError(
                f"two folders of seed {seed}; merge the runs of one seed first with merge_runs"
            )
        by_seed[seed] = (records, results, timing)
    return by_seed


def _average(
    by_seed: dict[int, _Run], common: set[tuple[str, str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every unit's value and every (fold, model)'s timings averaged over the seeds, for the
    (fold, model) pairs run at every seed."""
    results = pd.concat([r for _, r, _ in by_seed.values()], ignore_index=True)
    results = results[[p in common for p in zip(results["fold"], results["model"], strict=True)]]
    keys = [c for c in results.columns if c != "value"]
    # dropna=False: empty context/perturbation/category cells are keys too.
    results = results.groupby(keys, dropna=False, sort=False)["value"].mean().reset_index()
    timing = pd.concat([t for _, _, t in by_seed.values()], ignore_index=True)
    timing = timing[[p in common for p in zip(timing["fold"], timing["model"], strict=True)]]
    numeric = [c for c in timing.columns if pd.api.types.is_numeric_dtype(timing[c])]
    numeric = [c for c in numeric if c not in ("fold", "model")]
    agg: dict[str, Any] = {c: "mean" for c in numeric}
    agg.update({c: _joined for c in timing.columns if c not in (*numeric, "fold", "model")})
    timing = timing.groupby(["fold", "model"], sort=False).agg(agg).reset_index()
    return results, timing


def _record(
    name: str,
    runs: Sequence[str | os.PathLike[str]],
    records: Sequence[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """``run.json`` of a combined run: the call, the first run's suite and machine, ``extra``,
    and the timings: the wall time of the longest of ``records`` (runs may have run side by
    side, so their wall times do not add up) and the CPU time summed over them."""
    first = records[0]
    return {
        "command": [f"celltwin.benchmark.{name}", *map(str, runs)],
        "suite": first["suite"],
        "versions": first.get("versions"),
        "machine": first.get("machine"),
        **extra,
        "timings": {
            "total_s": max(float(r["timings"]["total_s"]) for r in records),
            "cpu_s": sum(float(r["timings"]["cpu_s"]) for r in records),
            "load_average_start": first["timings"].get("load_average_start"),
        },
    }


def _read_run(run: Path) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """A run folder's records (a merged folder's: the runs it was merged from), results and
    timings."""
    missing = [f for f in _RUN_FILES if not (run / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{run} is not a finished benchmark run (missing {', '.join(missing)}); "
            "pass folders written by `celltwin benchmark --out`"
        )
    source = json.loads((run / "run.json").read_text())
    if "averaged_from" in source:
        raise ValueError(f"{run} holds values averaged over seeds; pass the per-seed folders")
    # A merged folder contributes the runs it was merged from, so merges can be merged.
    records = list(source.get("merged_from", [source]))
    # round_trip: the merged values are bit-identical to the source runs'.
    frame = pd.read_csv(
        run / "results.csv", keep_default_na=False, na_values=[""], float_precision="round_trip"
    )
    return records, frame.drop(columns=["suite"], errors="ignore"), pd.read_csv(run / "timings.csv")


def _check_one_suite(records: Sequence[dict[str, Any]]) -> None:
    """Refuse records of different suites or suite versions."""
    for key, what in ((("suite", "name"), "suite"), (("suite", "version"), "suite version")):
        values = {str(r[key[0]][key[1]]) for r in records}
        if len(values) > 1:
            raise ValueError(f"runs differ in {what}: {sorted(values)}; merge runs of one suite")


def _joined(values: pd.Series) -> str:
    """The distinct non-empty values of a text column, joined (a status over seeds)."""
    seen = [str(v) for v in dict.fromkeys(values.dropna()) if str(v)]
    return ", ".join(seen)
