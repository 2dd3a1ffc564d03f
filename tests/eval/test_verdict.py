"""The verdict: the model against its best baseline and the noise ceiling, paired per unit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.eval import Evaluation, PairedComparison, outcome, verdict, verdict_frame

PERTS = [f"P{i}" for i in range(8)]


def _long(values: dict[str, list[float]], **extra: str) -> pd.DataFrame:
    frames = [
        pd.DataFrame({PERTURBATION: PERTS[: len(v)], CONTEXT: "K562", "metric": m, "value": v})
        for m, v in values.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    for key, value in extra.items():
        out[key] = value
    return out


def _summary(values: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        m: {"mean": float(np.mean(v)), "median": float(np.median(v)), "ci_low": min(v),
            "ci_high": max(v), "n": len(v)}
        for m, v in values.items()
    }  # fmt: skip


def _evaluation(model, baselines, ceiling) -> Evaluation:
    return Evaluation(
        per_perturbation=_long(model),
        summary=_summary(model),
        baselines={name: _summary(v) for name, v in baselines.items()},
        ceiling=_summary(ceiling),
        skipped={},
        params={"model": "linear", "n_boot": 200, "seed": 0},
        baseline_values=pd.concat(
            [_long(v, baseline=name) for name, v in baselines.items()], ignore_index=True
        ),
        ceiling_values=_long(ceiling),
    )


def test_better_than_the_best_baseline_and_tied_with_the_ceiling() -> None:
    rng = np.random.default_rng(0)
    model = {"pearson_delta": list(0.8 + rng.normal(0, 0.02, 8)),
             "mae": list(0.2 + rng.normal(0, 0.01, 8))}  # fmt: skip
    baselines = {
        "control": {"pearson_delta": [0.0] * 8, "mae": [0.5] * 8},
        "mean": {"pearson_delta": list(0.4 + rng.normal(0, 0.02, 8)), "mae": [0.3] * 8},
    }
    ceiling = {"pearson_delta": list(np.array(model["pearson_delta"]) + rng.normal(0, 0.05, 8)),
               "mae": [0.1] * 8}  # fmt: skip
    found = {v.metric: v for v in verdict(_evaluation(model, baselines, ceiling))}
    assert list(found) == ["pearson_delta", "mae"]  # the headline metrics it has, in order
    r = found["pearson_delta"]
    assert r.baseline == "mean" and r.against_baseline == "better"
    assert r.vs_baseline is not None and r.vs_baseline.n == 8
    assert r.vs_baseline.mean_diff == pytest.approx(
        np.mean(model["pearson_delta"]) - np.mean(baselines["mean"]["pearson_delta"])
    )
    assert r.against_ceiling == "tie" and not math.isnan(r.ci_low)
    # Lower is better: the best baseline has the lowest error; the ceiling's is lower still.
    e = found["mae"]
    assert e.baseline == "mean" and e.against_baseline == "better"
    assert e.against_ceiling == "worse" and not e.above_ceiling
    frame = verdict_frame(list(found.values()))
    assert list(frame["against_baseline"]) == ["better", "better"]


def test_one_unit_has_no_interval_and_above_the_ceiling_is_flagged() -> None:
    model = {"spearman": [0.468]}
    ev = _evaluation(model, {"mean": {"spearman": [0.2]}}, {"spearman": [0.386]})
    (v,) = verdict(ev, metrics=["spearman"])
    assert v.n == 1 and math.isnan(v.ci_low) and math.isnan(v.ci_high)
    assert v.against_baseline == "better" and v.above_ceiling
    row = verdict_frame([v]).iloc[0]
    assert math.isnan(row["vs_baseline_ci_low"]) and row["vs_baseline_diff"] == pytest.approx(0.268)


@pytest.mark.parametrize(
    ("low", "high", "higher", "word"),
    [(0.1, 0.3, True, "better"), (0.1, 0.3, False, "worse"), (-0.1, 0.3, True, "tie"),
     (-0.3, -0.1, False, "better")],
)  # fmt: skip
def test_outcome_is_a_tie_when_the_interval_includes_zero(low, high, higher, word) -> None:
    c = PairedComparison(5, (low + high) / 2, low, high, 0.6, 0.4, 0.0)
    assert outcome(c, higher_is_better=higher) == word
    assert outcome(None, higher_is_better=higher) == ""
