"""Leaderboard pages from tables built by hand: the markdown section and the HTML page."""

from __future__ import annotations

from typing import Any

import pandas as pd

from celltwin.pl import LeaderboardTables, leaderboard_html, leaderboard_markdown


def _tables(**overrides: object) -> LeaderboardTables:
    rows = [
        ("ceiling", "ceiling", "mae", 2, 0.1, 0.05, 0.15),
        ("mean", "baseline", "mae", 2, 0.5, 0.4, 0.6),
        ("mean", "baseline", "coverage", 2, 1.0, 1.0, 1.0),
        ("transition", "model", "mae", 2, 0.3, 0.2, 0.4),
        ("transition", "model", "coverage", 2, 0.5, 0.5, 0.5),
        ("transition", "model", "mae/ceiling", 2, 0.33, 0.3, 0.36),
    ]
    summary = pd.DataFrame(
        rows, columns=["model", "role", "metric", "n_folds", "mean", "ci_low", "ci_high"]
    )
    timings = pd.DataFrame(
        {
            "fold": ["f0", "f0"],
            "model": ["mean", "transition"],
            "status": ["ok", "partial"],
            "reason": ["", "refused 1 of 2: x"],
            "total_s": [1.0, 2.0],
            "cpu_s": [1.0, 2.0],
            "peak_delta_mb": [10.0, 20.0],
        }
    )
    fields: dict[str, Any] = {
        "suite": "toy",
        "version": "3",
        "description": "A toy suite.",
        "metrics": ["mae", "pds"],
        "summary": summary,
        "order": ["ceiling", "transition", "mean"],
        "directions": {"mae": False, "mae/ceiling": True, "coverage": True},
        "n_folds": 2,
        "coverage_metric": "coverage",
        "intervals": summary.iloc[:0],
        "timings": timings,
        "record": {"timings": {"total_s": 12.0, "cpu_s": 20.0}},
        "seed": 7,
        **overrides,
    }
    return LeaderboardTables(**fields)


def test_markdown_lays_out_the_tables_without_computing() -> None:
    md = leaderboard_markdown(_tables())
    lines = md.splitlines()
    assert lines[0] == "## toy (v3)"
    assert (
        "2 folds, seed 7. Mean over folds [bootstrap 95% CI over folds]; ranked by **mae** ↓." in md
    )
    # Rows in the given order: reference rows first, roles as labels; pds has no values.
    assert "| model | mae ↓ | coverage |" in lines
    table = [line for line in lines if line.startswith("| ")]
    assert table[1].startswith("| *ceiling (split-half)* | 0.100 [0.050, 0.150] |  |")
    assert table[2] == "| **transition** | 0.300 [0.200, 0.400] | 0.500 |"
    assert table[3] == "| mean (baseline) | 0.500 [0.400, 0.600] | 1.000 |"
    assert "| **transition** | 0.330 [0.300, 0.360] |" in md  # fraction of the ceiling
    assert "- transition: partial — refused 1 of 2: x" in md
    assert md.endswith("Wall time of the run: 12 s (20 CPU s).\n")


def test_markdown_names_the_seeds_averaged_and_models_left_out() -> None:
    record = {"seeds": [0, 1], "left_out": {"transition": ["f1"]}}
    md = leaderboard_markdown(_tables(record=record))
    assert "seeds 0, 1 (each unit's values averaged over them)" in md
    assert "Left out, not run at every seed: transition (f1)." in md


def test_html_labels_models_by_role_and_says_when_none_has_results() -> None:
    tables = _tables()
    assert "No model produced results." in leaderboard_html(tables, {})
    metrics = pd.DataFrame(
        {"context": ["A"], "perturbation": ["p"], "fold": ["f0"], "metric": ["mae"], "value": [0.5]}
    )
    summary = pd.DataFrame(
        {"source": ["model"], "role": ["model"], "metric": ["mae"], "mean": [0.5],
         "median": [0.5], "ci_low": [0.5], "ci_high": [0.5], "n": [1]}
    )  # fmt: skip
    page = leaderboard_html(tables, {"mean": {"metrics": metrics, "summary": summary}})
    assert "<title>celltwin benchmark: toy (v3)</title>" in page
    assert "mean (baseline)" in page
    assert "transition: partial in 1 fold(s) (f0) — refused 1 of 2: x" in page
