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
