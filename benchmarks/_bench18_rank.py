"""Scoring and rank statistics shared by the issue-18 screen benchmarks.

``score_candidates`` is the one call a screen makes to score candidates against a query; it uses
``celltwin.screen``'s objectives when that package is importable and a TEMPORARY cosine /
Pearson scorer (:func:`temporary_similarity`) otherwise, so the benchmarks ran before the
screen package landed and switch to it without other changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from celltwin.eval import bootstrap_ci, paired_comparison

TOPS = (1, 5, 10, 50)


def temporary_similarity(query: np.ndarray, effects: np.ndarray, *, method: str) -> np.ndarray:
    """TEMPORARY scorer (until ``celltwin.screen`` lands): cosine or Pearson similarity of each
    candidate row of ``effects`` with ``query`` (NaN entries count as 0; a zero row scores 0)."""
    q = np.nan_to_num(np.asarray(query, dtype=np.float64))
    x = np.nan_to_num(np.asarray(effects, dtype=np.float64))
    if method == "pearson":
        q = q - q.mean()
        x = x - x.mean(axis=1, keepdims=True)
    elif method != "cosine":
        raise ValueError(f"method must be 'cosine' or 'pearson' (got {method!r})")
    norm = np.linalg.norm(x, axis=1) * np.linalg.norm(q)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = x @ q / norm
    return np.where(norm > 0, out, 0.0)


def score_candidates(
    query: np.ndarray,
    effects: np.ndarray,
    genes: Sequence[str],
    *,
    method: str,
    objective: str = "mimic",
) -> np.ndarray:
    """Scores of the candidate rows of ``effects`` for ``objective`` ("mimic": most similar to
    ``query`` is best; "reverse": most opposite is best), oriented so that HIGHER IS BETTER.

    ``method`` is "cosine", "pearson" (celltwin.screen's alternatives when it is importable,
    else :func:`temporary_similarity`) or "wtcs" (CMap's weighted connectivity score,
    celltwin.screen only).
    """
    x = np.asarray(effects, dtype=np.float64)
    refused = np.isnan(x).all(axis=1)
    out = np.full(x.shape[0], np.nan)
    if not refused.all():
        out[~refused] = _score(query, np.nan_to_num(x[~refused]), genes, method, objective)
    return out


def _score(
    query: np.ndarray, effects: np.ndarray, genes: Sequence[str], method: str, objective: str
) -> np.ndarray:
    try:
        from celltwin import screen
    except ImportError:
        screen = None
    if screen is not None:
        obj = screen.get_objective(objective, query=_as_query(query, genes), method=method)
        s = np.asarray(obj.score(np.asarray(effects, dtype=np.float64), list(genes)), float)
        return s if obj.direction == "higher" else -s
    if method == "wtcs":
        raise RuntimeError("the connectivity score needs celltwin.screen")
    sim = temporary_similarity(query, effects, method=method)
    return sim if objective == "mimic" else -sim


def _as_query(query: np.ndarray, genes: Sequence[str]) -> object:
    import pandas as pd

    return pd.Series(np.asarray(query, dtype=np.float64), index=list(genes))


def rank_of_true(scores: np.ndarray, true: int) -> dict[str, float]:
    """Tie-aware rank statistics of candidate ``true`` (higher score = better): the expected
    rank, top-k hit probabilities and reciprocal rank under a random order among ties."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    # Identical candidates (e.g. every held-out row of a ``mean`` model) can score a few ulp
    # apart after a BLAS product: scores within a relative 1e-9 count as tied.
    tol = 1e-9 * max(1.0, abs(s[true])) if np.isfinite(s[true]) else 0.0
    better = int(np.sum(s > s[true] + tol))
    tied = int(np.sum(np.abs(s - s[true]) <= tol)) if tol else int(np.sum(s == s[true]))
    positions = better + np.arange(1, tied + 1)
    out = {"rank": float(positions.mean()), "rr": float(np.mean(1.0 / positions))}
    for k in TOPS:
        out[f"top{k}"] = float(np.clip((k - better) / tied, 0.0, 1.0))
    return out


def random_expectation(n_candidates: int) -> dict[str, float]:
    """The same statistics for a uniformly random rank among ``n_candidates``."""
    positions = np.arange(1, n_candidates + 1)
    out = {"rank": float(positions.mean()), "rr": float(np.mean(1.0 / positions))}
    for k in TOPS:
        out[f"top{k}"] = min(k, n_candidates) / n_candidates
    return out


def mean_ci(values: np.ndarray) -> str:
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_ci(v, n_boot=2000, seed=0)
    return f"{np.nanmean(v):.3f} [{lo:.3f}, {hi:.3f}]"


def paired(a: np.ndarray, b: np.ndarray) -> str:
    r = paired_comparison(a, b, higher_is_better=True, n_boot=2000, seed=0)
    return (
        f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] "
        f"(better {r.share_a_better:.0%} / worse {r.share_b_better:.0%})"
    )
