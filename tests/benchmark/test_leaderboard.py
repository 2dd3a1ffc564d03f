"""Roles on the leaderboard and the paired comparisons: learned vs baseline, learned vs each peer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from celltwin.benchmark import Leaderboard, get_suite, role
from celltwin.benchmark._aggregate import PEER_MODELS
from celltwin.benchmark._folds import TIMING_COLUMNS, UNIT_COLUMNS

SUITE = "kang2018-heldout-celltype"
PRIMARY = "pearson_delta_top20_de"
FOLDS = ["B", "CD4_T", "CD8_T", "NK", "DC", "CD14_Mono"]
#: Per model: (primary metric, energy distance) per fold, one unit per fold as on Kang.
VALUES = {
    "transition": ([0.93, 0.95, 0.90, 0.91, 0.94, 0.96], [1.0, 0.8, 1.2, 1.1, 0.9, 0.7]),
    "context_shift": ([0.83, 0.85, 0.80, 0.84, 0.82, 0.86], [2.0, 2.2, 2.1, 1.9, 2.4, 2.3]),
    # State beats every model on the primary metric: it still is neither "learned" nor baseline.
    "state": ([0.96, 0.97, 0.95, 0.96, 0.98, 0.97], [0.5, 0.6, 0.4, 0.7, 0.5, 0.6]),
    "scgen": ([0.88, 0.90, 0.85, 0.86, 0.89, 0.91], [1.5, 1.6, 1.4, 1.7, 1.5, 1.6]),
}


def _board() -> Leaderboard:
    rows = []
    for model, (primary, energy) in VALUES.items():
        for fold, p, e in zip(FOLDS, primary, energy, strict=True):
            for metric, value in ((PRIMARY, p), ("energy_distance", e)):
                rows.append((fold, model, fold, "IFNB", metric, value, ""))
    results = pd.DataFrame(rows, columns=list(UNIT_COLUMNS))
    timings = pd.DataFrame(columns=list(TIMING_COLUMNS))
    return Leaderboard.from_results(
        results, suite=get_suite(SUITE), timings=timings, record={}, seed=0
    )


def test_peers_have_their_own_role() -> None:
    assert {"state", "scgen"} <= PEER_MODELS
    assert role("state") == role("scgen") == "peer"
    assert role("context_shift") == "baseline" and role("transition") == "model"
    assert role("ceiling") == "ceiling"
    summary = _board().summary()
    assert set(summary.loc[summary["model"] == "scgen", "role"]) == {"peer"}


def test_main_comparison_ignores_peers() -> None:
    board = _board()
    assert board.ranking()[0] == "state"
    c = board.comparison()
    assert c is not None and (c["a"], c["b"]) == ("transition", "context_shift")


def test_learned_model_is_compared_with_each_peer_on_primary_and_energy() -> None:
    board = _board()
    found = board.peer_comparisons()
    pairs = [(c["a"], c["b"], c["metric"]) for c in found]
    # Peers best first (state, then scgen), each on the primary metric and energy distance.
    assert pairs == [
        ("transition", "state", PRIMARY),
        ("transition", "state", "energy_distance"),
        ("transition", "scgen", PRIMARY),
        ("transition", "scgen", "energy_distance"),
    ]
    for c in found:
        a = np.array(VALUES[c["a"]][c["metric"] != PRIMARY])
        b = np.array(VALUES[c["b"]][c["metric"] != PRIMARY])
        assert c["n"] == len(FOLDS) and c["mean_diff"] == pytest.approx(float(np.mean(a - b)))
        assert c["ci_low"] <= c["mean_diff"] <= c["ci_high"]
        # Lower is better for energy distance: "better" counts follow the metric's direction.
        gain = a - b if c["metric"] == PRIMARY else b - a
        assert c["share_a_better"] == pytest.approx(float(np.mean(gain > 0)))
        # The checks that do not lean on the bootstrap, as scipy computes them.
        d = a - b
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        assert (c["t_low"], c["t_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
        assert c["wilcoxon_p"] == pytest.approx(stats.wilcoxon(d).pvalue)
    state_energy = found[1]
    assert state_energy["share_b_better"] == 1.0  # State has the lower energy distance everywhere


def test_markdown_and_run_json_report_the_peer_comparisons(tmp_path: Path) -> None:
    board = _board()
    md = board.to_markdown()
    assert "| state (peer) |" in md and "| context_shift (baseline) |" in md
    assert "**transition**" in md
    assert "Paired comparison (best learned model vs best baseline)" in md
    assert "| transition − state | energy_distance ↓ |" in md
    assert "| transition − scgen | pearson_delta_top20_de ↑ |" in md
    assert "over 6 paired units;" in md and "| 6 units | 0% | 100% |" in md
    assert "| t 95% CI | Wilcoxon p |" in md and "Wilcoxon signed-rank p = " in md
    # State beats transition on all 6 folds: the smallest two-sided signed-rank p for 6 units.
    assert "| 6 units | 0% | 100% | [" in md and f"| {2 / 2**6:.3f} |" in md
    board.write(tmp_path, report=False)
    record = json.loads((tmp_path / "run.json").read_text())
    assert [c["b"] for c in record["peer_comparisons"]] == ["state", "state", "scgen", "scgen"]


def test_no_learned_model_means_no_peer_comparison() -> None:
    board = _board()
    board.results = board.results[board.results["model"] != "transition"]
    board.table = board.table[board.table["model"] != "transition"]
    assert board.peer_comparisons() == []
    assert "learned − peer" not in board.to_markdown()


def test_models_on_fewer_folds_are_flagged_but_not_models_without_the_primary_metric() -> None:
    rows = []
    for model, (primary, energy) in VALUES.items():
        for fold, p, e in zip(FOLDS, primary, energy, strict=True):
            if model == "scgen" and fold != "CD14_Mono":
                continue  # run on one fold only
            # context_shift: the primary metric is undefined (NaN) on every fold it ran on, as
            # the VCC score of a model that predicts no cells.
            rows.append(
                (fold, model, fold, "IFNB", PRIMARY, np.nan if model == "context_shift" else p, "")
            )
            rows.append((fold, model, fold, "IFNB", "energy_distance", e, ""))
    board = Leaderboard.from_results(
        pd.DataFrame(rows, columns=list(UNIT_COLUMNS)),
        suite=get_suite(SUITE),
        timings=pd.DataFrame(columns=list(TIMING_COLUMNS)),
        record={},
        seed=0,
    )
    md = board.to_markdown()
    assert f"scgen (peer) (1 of {len(FOLDS)} folds)" in md
    assert "context_shift (baseline) |" in md and "context_shift (baseline) (" not in md


def test_one_fold_has_no_small_n_checks() -> None:
    board = _board()
    board.results = board.results[board.results["fold"] == FOLDS[0]]
    board.table = board.table[board.table["fold"] == FOLDS[0]]
    md = board.to_markdown()
    line = next(x for x in md.splitlines() if x.startswith("Paired comparison (best"))
    assert line.endswith("context_shift on 0%.") and "Wilcoxon" not in line


def test_verdict_judges_the_best_learned_model_against_the_best_baseline() -> None:
    board = _board()
    found = {v.metric: v for v in board.verdict()}
    assert list(found) == [PRIMARY, "energy_distance"]  # the suite's metrics with values
    v = found[PRIMARY]
    assert (v.model, v.baseline, v.n) == ("transition", "context_shift", len(FOLDS))
    assert v.against_baseline == "better" and v.ci_low < v.mean < v.ci_high
    assert v.vs_ceiling is None and v.against_ceiling == ""
    assert found["energy_distance"].against_baseline == "better"  # lower is better
    # Without a learned model the best model is a baseline: never compared with itself.
    baselines_only = Leaderboard.from_results(
        board.results[board.results["model"].isin(["context_shift"])],
        suite=get_suite(SUITE),
        timings=board.timings,
        record={},
    )
    (first, *_) = baselines_only.verdict()
    assert first.model == "context_shift" and first.baseline == "" and first.vs_baseline is None
