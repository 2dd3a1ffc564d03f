"""The verdict of an evaluation: the model against its best baseline and the noise ceiling.

What a reader wants before any table: on each headline metric, the model's mean (with its CI),
the best baseline and the split-half ceiling, and whether the model is better, worse or tied
with each (a paired comparison over the same perturbations; *tie* when the CI of the
difference includes 0). :func:`verdict` computes it from an :class:`~celltwin.eval.Evaluation`;
:func:`celltwin.pl.headline` writes it as a few lines of text and the reports show it first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._registry import get_metric
from ._result import Evaluation
from ._stats import PairedComparison, paired_comparison

__all__ = ["HEADLINE_METRICS", "MIN_CI_UNITS", "Verdict", "outcome", "verdict", "verdict_frame"]

#: Metrics a headline shows when none are named (those an evaluation has, in this order).
HEADLINE_METRICS = ("pearson_delta", "des", "mae")
#: Fewest units for which a confidence interval is shown: below it a bootstrap CI over units is
#: degenerate (``[x, x]`` for one unit) and says nothing.
MIN_CI_UNITS = 3


def outcome(comparison: PairedComparison | None, *, higher_is_better: bool) -> str:
    """``"better"``, ``"worse"`` or ``"tie"`` for A against B (``""`` without a comparison).

    With at least :data:`MIN_CI_UNITS` paired units, *tie* when the 95% CI of the difference
    includes 0; with fewer there is no interval, and the sign of the difference decides.
    """
    if comparison is None or comparison.n == 0 or not math.isfinite(comparison.mean_diff):
        return ""
    if comparison.n >= MIN_CI_UNITS:
        if comparison.ci_low <= 0 <= comparison.ci_high:
            return "tie"
        ahead = comparison.ci_low > 0
    else:
        if comparison.mean_diff == 0:
            return "tie"
        ahead = comparison.mean_diff > 0
    return "better" if ahead == higher_is_better else "worse"


@dataclass(frozen=True)
class Verdict:
    """One model on one metric, against its best baseline and the noise ceiling.

    Attributes
    ----------
    model, metric
        What is judged.
    higher_is_better
        The metric's direction.
    n
        Units (perturbations, or folds in a benchmark) the model's mean is over.
    mean, ci_low, ci_high
        The model's mean and its bootstrap 95% CI (NaN bounds below :data:`MIN_CI_UNITS` units).
    baseline
        Name of the best baseline on this metric (``""`` when there is none).
    baseline_mean
        Its mean over the same units.
    vs_baseline, vs_ceiling
        Paired comparisons model - baseline and model - ceiling (``None`` when not available).
    ceiling_mean
        The split-half noise ceiling's mean (NaN when not computed).
    """

    model: str
    metric: str
    higher_is_better: bool
    n: int
    mean: float
    ci_low: float
    ci_high: float
    baseline: str = ""
    baseline_mean: float = np.nan
    vs_baseline: PairedComparison | None = None
    ceiling_mean: float = np.nan
    vs_ceiling: PairedComparison | None = None

    @property
    def against_baseline(self) -> str:
        """``better``, ``worse``, ``tie`` or ``""`` (see :func:`outcome`)."""
        return outcome(self.vs_baseline, higher_is_better=self.higher_is_better)

    @property
    def against_ceiling(self) -> str:
        """``better``, ``worse``, ``tie`` or ``""`` (see :func:`outcome`)."""
        return outcome(self.vs_ceiling, higher_is_better=self.higher_is_better)

    @property
    def above_ceiling(self) -> bool:
        """Whether the model's mean is better than the ceiling's (the metric saturates)."""
        if not (math.isfinite(self.mean) and math.isfinite(self.ceiling_mean)):
            return False
        gain = self.mean - self.ceiling_mean
        return bool(gain > 0 if self.higher_is_better else gain < 0)

    def to_dict(self) -> dict[str, object]:
        """A flat row (see :func:`verdict_frame`)."""
        row: dict[str, object] = {
            "model": self.model,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "n": self.n,
            "mean": self.mean,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "baseline": self.baseline,
            "baseline_mean": self.baseline_mean,
            "ceiling_mean": self.ceiling_mean,
        }
        for name, c in (("baseline", self.vs_baseline), ("ceiling", self.vs_ceiling)):
            row[f"vs_{name}_diff"] = c.mean_diff if c else np.nan
            row[f"vs_{name}_ci_low"] = c.ci_low if c and c.n >= MIN_CI_UNITS else np.nan
            row[f"vs_{name}_ci_high"] = c.ci_high if c and c.n >= MIN_CI_UNITS else np.nan
        row["against_baseline"] = self.against_baseline
        row["against_ceiling"] = self.against_ceiling
        row["above_ceiling"] = self.above_ceiling
        return row


def verdict_frame(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """The verdicts as a table, one row per (model, metric)."""
    return pd.DataFrame([v.to_dict() for v in verdicts])


def _paired(
    model: pd.Series, other: pd.Series, *, higher: bool, n_boot: int, seed: int
) -> PairedComparison | None:
    """Model vs ``other`` over the units both have (index: the unit keys)."""
    both = model.to_frame("a").join(other.to_frame("b"), how="inner")
    if both.empty:
        return None
    c = paired_comparison(
        both["a"].to_numpy(float),
        both["b"].to_numpy(float),
        higher_is_better=higher,
        n_boot=n_boot,
        seed=seed,
    )
    return c if c.n else None


def verdict(evaluation: Evaluation, *, metrics: Sequence[str] | None = None) -> list[Verdict]:
    """The model against its best baseline and the noise ceiling, per metric.

    Parameters
    ----------
    evaluation
        As :func:`celltwin.eval.evaluate` returns it.
    metrics
        Metrics judged, in this order; default: :data:`HEADLINE_METRICS` the evaluation has,
        else its first three perturbation-level metrics. Metrics without a model value are
        left out.

    Returns
    -------
    list of Verdict
        One per metric. The best baseline is the one with the best mean on that metric; the
        comparisons pair the model with it (and with the ceiling) on the same perturbations.
    """
    ev = evaluation
    per = ev.per_perturbation
    have = [m for m in dict.fromkeys(per["metric"].astype(str)) if ev.summary.get(m, {}).get("n")]
    if metrics is None:
        metrics = [m for m in HEADLINE_METRICS if m in have] or have[:3]
    keys = [k for k in ev.keys if k in per.columns]
    n_boot, seed = int(ev.params.get("n_boot", 1000)), int(ev.params.get("seed", 0))
    out = []
    for metric in metrics:
        s = ev.summary.get(metric)
        if not s or not s.get("n"):
            continue
        higher = get_metric(metric).higher_is_better
        model = _values(per, metric, keys)
        base_name, base_mean = _best_baseline(ev, metric, higher)
        vs_base = vs_ceil = None
        if base_name and not ev.baseline_values.empty:
            rows = ev.baseline_values[ev.baseline_values["baseline"] == base_name]
            vs_base = _paired(
                model, _values(rows, metric, keys), higher=higher, n_boot=n_boot, seed=seed
            )
        if not ev.ceiling_values.empty:
            ceiling = _values(ev.ceiling_values, metric, keys)
            vs_ceil = _paired(model, ceiling, higher=higher, n_boot=n_boot, seed=seed)
        n = int(s["n"])
        shown = n >= MIN_CI_UNITS
        out.append(
            Verdict(
                model=str(ev.params.get("model") or "prediction"),
                metric=metric,
                higher_is_better=higher,
                n=n,
                mean=float(s["mean"]),
                ci_low=float(s["ci_low"]) if shown else np.nan,
                ci_high=float(s["ci_high"]) if shown else np.nan,
                baseline=base_name,
                baseline_mean=base_mean,
                vs_baseline=vs_base,
                ceiling_mean=float(ev.ceiling.get(metric, {}).get("mean", np.nan)),
                vs_ceiling=vs_ceil,
            )
        )
    return out


def _values(frame: pd.DataFrame, metric: str, keys: list[str]) -> pd.Series:
    """One metric's values indexed by the unit keys."""
    rows = frame[frame["metric"] == metric]
    return rows.set_index([k for k in keys if k in rows.columns])["value"].astype(float)


def _best_baseline(ev: Evaluation, metric: str, higher: bool) -> tuple[str, float]:
    """The baseline with the best finite mean on ``metric``: ``(name, mean)`` or ``("", nan)``."""
    means = {
        name: float(s[metric]["mean"])
        for name, s in ev.baselines.items()
        if metric in s and math.isfinite(float(s[metric]["mean"]))
    }
    if not means:
        return "", np.nan
    pick = max if higher else min
    name = pick(means, key=lambda k: means[k])
    return name, means[name]
