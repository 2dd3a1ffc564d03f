"""Aggregation over perturbations: summaries with bootstrap CIs and paired model comparison.

Perturbations are the unit of resampling: a CI says how much a mean would move had other
perturbations of the same kind been measured. NaN values (undefined metric) are left out.
A paired comparison also carries two checks that do not lean on the bootstrap, whose
percentile interval is too narrow when the units are few (a benchmark's 5-7 folds): Student's
t interval of the mean difference and the Wilcoxon signed-rank test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PairedComparison", "Summary", "bootstrap_ci", "paired_comparison", "summarize"]

#: Bootstrap resamples used unless told otherwise.
N_BOOT = 2000


@dataclass(frozen=True)
class Summary:
    """Mean, median and percentile-bootstrap CI of the mean over ``n`` perturbations."""

    n: int
    mean: float
    median: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedComparison:
    """Model A vs model B on the same perturbations.

    ``mean_diff`` and its CI are of ``A - B`` (raw units: positive means A is higher, which is
    better only when higher is better). ``share_a_better``/``share_b_better``/``share_tied`` count
    perturbations by which model is better, respecting the metric's direction. ``t_low`` and
    ``t_high`` bound Student's t interval of ``mean_diff`` at the same level, and
    ``wilcoxon_p`` is the two-sided Wilcoxon signed-rank p of the differences (NaN below 2
    units; 1 when every difference is 0). With few units, count a difference only when the
    bootstrap CI, the t interval and the signed-rank test all exclude zero.
    """

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    share_a_better: float
    share_b_better: float
    share_tied: float
    t_low: float = np.nan
    t_high: float = np.nan
    wilcoxon_p: float = np.nan


def _finite(values: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def bootstrap_ci(
    values: ArrayLike, *, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (NaN ignored); NaNs when empty."""
    if not 0 < level < 1:
        raise ValueError(f"'level' must be in (0, 1) (got {level})")
    v = _finite(values)
    if v.size == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    # Blocks bound memory at n_boot x n draws for large n.
    block = max(1, 2_000_000 // v.size)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        idx = rng.integers(0, v.size, size=(stop - start, v.size))
        means[start:stop] = v[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarize(
    values: ArrayLike, *, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0
) -> Summary:
    """Summarise per-perturbation values: n, mean, median and a bootstrap CI of the mean."""
    v = _finite(values)
    if v.size == 0:
        return Summary(0, np.nan, np.nan, np.nan, np.nan)
    low, high = bootstrap_ci(v, n_boot=n_boot, level=level, seed=seed)
    return Summary(int(v.size), float(v.mean()), float(np.median(v)), low, high)


def paired_comparison(
    a: ArrayLike,
    b: ArrayLike,
    *,
    higher_is_better: bool,
    n_boot: int = N_BOOT,
    level: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare two models' per-perturbation values on the same perturbations (same order).

    Perturbations where either value is NaN are dropped. The CI resamples perturbations, keeping
    each pair together.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(
            f"a and b must hold the same perturbations: got {x.size} and {y.size} values"
        )
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return PairedComparison(0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan)
    diff = x - y
    low, high = bootstrap_ci(diff, n_boot=n_boot, level=level, seed=seed)
    gain = diff if higher_is_better else -diff
    t_low, t_high = _t_interval(diff, level)
    return PairedComparison(
        n=int(x.size),
        mean_diff=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        share_a_better=float(np.mean(gain > 0)),
        share_b_better=float(np.mean(gain < 0)),
        share_tied=float(np.mean(gain == 0)),
        t_low=t_low,
        t_high=t_high,
        wilcoxon_p=_wilcoxon_p(diff),
    )


def _t_interval(diff: NDArray[np.float64], level: float) -> tuple[float, float]:
    """Student's t interval of the mean of ``diff`` (NaNs below 2 values)."""
    if diff.size < 2:
        return (np.nan, np.nan)
    mean = float(diff.mean())
    se = float(diff.std(ddof=1)) / np.sqrt(diff.size)
    if se == 0:
        return (mean, mean)
    from scipy import stats  # imported here: scipy.stats is slow to import

    low, high = stats.t.interval(level, diff.size - 1, loc=mean, scale=se)
    return (float(low), float(high))


def _wilcoxon_p(diff: NDArray[np.float64]) -> float:
    """Two-sided Wilcoxon signed-rank p of ``diff`` (NaN below 2 values, 1 if all are 0)."""
    if diff.size < 2:
        return np.nan
    if not np.any(diff != 0):
        return 1.0
    from scipy import stats  # imported here: scipy.stats is slow to import

    with warnings.catch_warnings():
        # Zeros or ties make scipy fall back from the exact distribution to the normal
        # approximation, and it says so; the approximate p is the answer wanted then.
        warnings.simplefilter("ignore", UserWarning)
        return float(stats.wilcoxon(diff).pvalue)
