"""Merging runs made on disjoint folds gives the leaderboard of one run over all folds; runs at
several seeds average into one leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celltwin.benchmark import average_seeds, merge_runs, run_benchmark

SUITE = "sim-doses"
MODELS = ["mean", "nearest_dose"]
FOLDS = ["highest", "lowest"]


def _run(out: Path, folds: list[str], *, seed: int = 3, models: list[str] = MODELS) -> None:
    run_benchmark(
        SUITE,
        models=models,
        folds=folds,
        out=out,
        seed=seed,
        progress=False,
        isolate=False,
        report=False,
        smoke=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("merge")
    _run(root / "all", FOLDS)
    _run(root / "a", FOLDS[:1])
    _run(root / "b", FOLDS[1:])
    _run(root / "seed4", FOLDS, seed=4)
    _run(root / "seed5", FOLDS, seed=5, models=MODELS[:1])
    return root


def test_merge_equals_one_run(runs: Path) -> None:
    board = merge_runs([runs / "a", runs / "b"], out=runs / "merged")
    one = pd.read_csv(runs / "all" / "leaderboard.csv")
    merged = pd.read_csv(runs / "merged" / "leaderboard.csv")
    key = ["fold", "model", "metric"]
    pd.testing.assert_frame_equal(
        one.sort_values(key).reset_index(drop=True), merged.sort_values(key).reset_index(drop=True)
    )
    # The summary over folds (means and bootstrap CIs) is recomputed over all of them.
    single = run_summary(runs / "all")
    pd.testing.assert_frame_equal(single, board.summary().sort_index())
    assert "Wall time of the run: " in (runs / "all_again" / "leaderboard.md").read_text()
    record = json.loads((runs / "merged" / "run.json").read_text())
    assert [r["call"]["folds"] for r in record["merged_from"]] == [FOLDS[:1], FOLDS[1:]]
    md = (runs / "merged" / "leaderboard.md").read_text()
    longest = max(r["timings"]["total_s"] for r in record["merged_from"])
    assert f"Wall time of the longest of the 2 combined runs: {longest:.0f} s" in md


def run_summary(folder: Path) -> pd.DataFrame:
    return merge_runs([folder], out=folder.parent / f"{folder.name}_again").summary().sort_index()


def test_merge_refuses_overlapping_or_foreign_runs(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"more than one run: .*highest/mean"):
        merge_runs([runs / "all", runs / "a"], out=tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a finished benchmark run"):
        merge_runs([runs / "a", tmp_path], out=tmp_path / "y")
    other = tmp_path / "other"
    other.mkdir()
    for name in ("results.csv", "timings.csv"):
        (other / name).write_text((runs / "b" / name).read_text())
    record = json.loads((runs / "b" / "run.json").read_text())
    record["call"]["seed"] = 4
    (other / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="differ in seed"):
        merge_runs([runs / "a", other], out=tmp_path / "z")


def test_a_merge_can_be_merged_again(runs: Path) -> None:
    # Folds merged in two steps (here: one run, then the merge of it with the other) give the
    # one-run leaderboard, and the record lists the original runs, not the intermediate merge.
    merge_runs([runs / "a"], out=runs / "step")
    merge_runs([runs / "step", runs / "b"], out=runs / "twice")
    one = pd.read_csv(runs / "all" / "leaderboard.csv")
    twice = pd.read_csv(runs / "twice" / "leaderboard.csv")
    key = ["fold", "model", "metric"]
    pd.testing.assert_frame_equal(
        one.sort_values(key).reset_index(drop=True), twice.sort_values(key).reset_index(drop=True)
    )
    record = json.loads((runs / "twice" / "run.json").read_text())
    assert [r["call"]["folds"] for r in record["merged_from"]] == [FOLDS[:1], FOLDS[1:]]
    assert record["call"]["seed"] == 3
    with pytest.raises(ValueError, match=r"more than one run: .*highest/mean"):
        merge_runs([runs / "step", runs / "a"], out=runs / "overlap")


def test_seeds_average_unit_by_unit(runs: Path) -> None:
    board = average_seeds([runs / "all", runs / "seed4"], out=runs / "avg")
    a = pd.read_csv(runs / "all" / "results.csv", keep_default_na=False, na_values=[""])
    b = pd.read_csv(runs / "seed4" / "results.csv", keep_default_na=False, na_values=[""])
    key = ["fold", "model", "context", "perturbation", "metric", "category"]
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    assert len(both) == len(a) == len(b)  # the same units at both seeds
    got = pd.read_csv(runs / "avg" / "results.csv", keep_default_na=False, na_values=[""])
    got = both.merge(got, on=key)
    assert len(got) == len(a)
    expected = got[["value_a", "value_b"]].mean(axis=1, skipna=True)
    np.testing.assert_allclose(got["value"], expected, rtol=1e-12)
    md = (runs / "avg" / "leaderboard.md").read_text()
    assert "seeds 3, 4 (each unit's values averaged over them)" in md
    assert "Left out" not in md
    assert board.record["seeds"] == [3, 4] and len(board.record["averaged_from"]) == 2
    longest = max(r["timings"]["total_s"] for r in board.record["averaged_from"])
    assert f"Wall time of the longest of the 2 combined runs: {longest:.0f} s" in md


def test_seeds_leave_out_pairs_missing_at_some_seed_and_refuse_bad_input(
    runs: Path, tmp_path: Path
) -> None:
    board = average_seeds([runs / "all", runs / "seed5"], out=tmp_path / "avg")
    assert set(board.results["model"]) == {MODELS[0], "ceiling"}
    assert board.record["left_out"] == {MODELS[1]: sorted(FOLDS)}
    assert f"Left out, not run at every seed: {MODELS[1]} (" in board.to_markdown()
    with pytest.raises(ValueError, match="two folders of seed 3"):
        average_seeds([runs / "all", runs / "a"], out=tmp_path / "x")
    with pytest.raises(ValueError, match="at least 2 seeds"):
        average_seeds([runs / "all"], out=tmp_path / "y")
    with pytest.raises(ValueError, match="averaged over seeds"):
        average_seeds([tmp_path / "avg", runs / "seed4"], out=tmp_path / "z")
    # A seed's fold-by-fold runs, merged first, count as one seed.
    merge_runs([runs / "a", runs / "b"], out=tmp_path / "seed3")
    again = average_seeds([tmp_path / "seed3", runs / "seed4"], out=tmp_path / "w")
    ref = average_seeds([runs / "all", runs / "seed4"], out=tmp_path / "v")
    key = ["fold", "model", "metric"]
    pd.testing.assert_frame_equal(
        again.table.sort_values(key).reset_index(drop=True),
        ref.table.sort_values(key).reset_index(drop=True),
    )
