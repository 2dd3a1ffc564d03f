"""Summaries with bootstrap CIs and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from celltwin.eval._stats import bootstrap_ci, paired_comparison, summarize


def test_summarize_matches_numpy_and_ignores_nan() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(loc=2.0, size=200)
    s = summarize(np.append(v, np.nan), n_boot=500)
    assert s.n == 200
    assert s.mean == pytest.approx(v.mean())
    assert s.median == pytest.approx(np.median(v))
    assert s.ci_low < s.mean < s.ci_high
    # The percentile CI is close to the normal one, mean +- 1.96 SE.
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert s.ci_high - s.ci_low == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert summarize([np.nan]).n == 0


def test_bootstrap_is_seeded() -> None:
    v = np.arange(30.0)
    assert bootstrap_ci(v, seed=3, n_boot=200) == bootstrap_ci(v, seed=3, n_boot=200)
    low, high = bootstrap_ci(np.full(10, 4.0), n_boot=50)
    assert low == high == 4.0
    with pytest.raises(ValueError, match="'level'"):
        bootstrap_ci(v, level=95)


def test_paired_comparison_respects_direction() -> None:
    a = np.array([0.9, 0.8, 0.7, 0.6, np.nan])
    b = np.array([0.5, 0.9, 0.7, 0.1, 0.3])
    higher = paired_comparison(a, b, higher_is_better=True, n_boot=300)
    assert higher.n == 4
    assert higher.mean_diff == pytest.approx(np.mean([0.4, -0.1, 0.0, 0.5]))
    assert (higher.share_a_better, higher.share_b_better, higher.share_tied) == (0.5, 0.25, 0.25)
    assert higher.ci_low <= higher.mean_diff <= higher.ci_high
    lower = paired_comparison(a, b, higher_is_better=False, n_boot=300)
    assert (lower.share_a_better, lower.share_b_better) == (0.25, 0.5)
    assert lower.mean_diff == higher.mean_diff  # raw A - B either way
    with pytest.raises(ValueError, match="same perturbations"):
        paired_comparison(a, b[:3], higher_is_better=True)


def test_paired_ci_excludes_zero_for_a_consistent_gain() -> None:
    rng = np.random.default_rng(1)
    b = rng.random(60)
    a = b + 0.1 + rng.normal(scale=0.02, size=60)
    cmp = paired_comparison(a, b, higher_is_better=True, n_boot=500)
    assert cmp.ci_low > 0 and cmp.share_a_better == 1.0


def test_paired_small_n_checks_agree_with_scipy() -> None:
    from scipy import stats

    # Kang, transition vs State, top-20 PearsonΔ per fold (three seeds averaged): one large
    # gain among small ones. The percentile bootstrap excludes zero, the t interval and the
    # signed-rank test do not: the reason the comparison carries all three.
    a = np.array([0.9534, 0.9498, 0.9706, 0.9119, 0.9658, 0.9840, 0.8985])
    b = np.array([0.9526, 0.9469, 0.9046, 0.8800, 0.9737, 0.9819, 0.8824])
    cmp = paired_comparison(a, b, higher_is_better=True)
    diff = a - b
    low, high = stats.t.interval(
        0.95, len(diff) - 1, loc=diff.mean(), scale=diff.std(ddof=1) / np.sqrt(len(diff))
    )
    assert (cmp.t_low, cmp.t_high) == pytest.approx((low, high))
    assert cmp.wilcoxon_p == pytest.approx(stats.wilcoxon(diff).pvalue)
    assert cmp.ci_low > 0 > cmp.t_low and cmp.wilcoxon_p > 0.05
    assert cmp.t_high - cmp.t_low > cmp.ci_high - cmp.ci_low
    # A 90% t interval is narrower than the 95% one.
    narrow = paired_comparison(a, b, higher_is_better=True, level=0.9)
    assert cmp.t_low < narrow.t_low < narrow.t_high < cmp.t_high


def test_paired_small_n_checks_edge_cases() -> None:
    one = paired_comparison([1.0], [0.5], higher_is_better=True)
    assert np.isnan(one.t_low) and np.isnan(one.t_high) and np.isnan(one.wilcoxon_p)
    same = paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], higher_is_better=True)
    assert (same.t_low, same.t_high, same.wilcoxon_p) == (0.0, 0.0, 1.0)
    # Zeros and ties: scipy falls back to its normal approximation (without a warning here).
    tied = paired_comparison(
        [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.5, 2.5, 3.5, 4.0], higher_is_better=True
    )
    assert 0 < tied.wilcoxon_p <= 1
