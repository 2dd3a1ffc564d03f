"""Connectivity scores of the Connectivity Map (Subramanian et al. 2017, Cell 171:1437).

For a candidate profile (one row of effects over genes) and a query (:class:`Query`):

Enrichment score (ES)
    Genes are ranked by the profile, most up first (ties kept in gene order). Walking down the
    list, a running sum rises by ``|r_j| / N_R`` at each gene ``j`` of the query set (``r_j``: the
    profile's value, ``N_R``: the sum of ``|r_j|`` over the set's genes) and falls by
    ``1 / (N - N_H)`` at every other gene (``N`` genes, ``N_H`` in the set): the weighted
    two-sample Kolmogorov-Smirnov walk of GSEA (Subramanian et al. 2005) with weight ``p = 1``.
    ES is the running sum's largest deviation from zero, with its sign. ES is 0 when every
    gene of the set has weight 0.
Weighted connectivity score (WTCS)
    ``(ES_up - ES_down) / 2`` when the two have different signs, else 0; a query with only an up
    set scores ``ES_up``, with only a down set ``-ES_down``. In ``[-1, 1]``: +1 the profile mimics
    the query, -1 it reverses it.
Null, NCS and tau
    The null of a profile is the same score for ``n_null`` random up and down sets of the query's
    sizes, drawn from the scored genes (equivalently: the profile with its gene labels
    permuted). The same random sets serve every row (fixed by ``seed``), so a row's null does not
    depend on the batch it is scored in. NCS divides a score by the mean of the null scores of
    its sign (positive by the mean positive, negative by the mean absolute negative) -- CMap's
    normalisation over a reference set of profiles, here the row's permuted profiles. Tau is the
    signed percentage of null NCS values whose absolute value is below the observed one's
    (CMap 2017: "a tau of 90 means only 10% of the reference showed stronger connectivity").

Cosine and Pearson alternatives compare the profile with the query's scores over the genes the
query scores; their null permutes the query's scores over those genes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from ..eval import benjamini_hochberg
from ._query import MIN_GENES, Query

Method = Literal["wtcs", "cosine", "pearson"]
METHODS: tuple[str, ...] = ("wtcs", "cosine", "pearson")
#: Random gene sets (or permutations) per row in the null of :func:`connectivity`.
N_NULL: int = 1000
#: The same for an objective's p-values, which a screen computes for every candidate: 200 keep
#: the WTCS null near 3 s per 1024 candidates x 2000 genes (2 cores); p-values then resolve to
#: 1/201. Raise ``n_null`` for finer p-values.
OBJECTIVE_N_NULL: int = 200
_CHUNK_ELEMENTS = 8_000_000  # rows x null sets x set size handled at once


def rank_positions(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's position in its row's descending order (0 = most up; ties in gene order),
    and each row's absolute values in that order (the walk's weights)."""
    x = np.asarray(profiles, dtype=np.float64)
    order = np.argsort(-x, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(x.shape[1])[None, :], axis=1)
    return ranks, np.abs(np.take_along_axis(x, order, axis=1))


def _es(ranks: np.ndarray, sorted_abs: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """ES of every row for each gene set: ``sets`` (k, s) of gene columns -> (rows, k)."""
    n, k, s = ranks.shape[0], *sets.shape
    if s == 0:
        return np.zeros((n, k), dtype=sorted_abs.dtype)
    pos = ranks[:, sets]  # (n, k, s): where each set gene sits in the row's order
    pos.sort(axis=-1)
    return _walk(sorted_abs[np.arange(n)[:, None, None], pos], pos, ranks.shape[1])


def _walk(w: np.ndarray, pos: np.ndarray, n_genes: int) -> np.ndarray:
    """The ES from the hits' sorted positions ``pos`` and weights ``w`` (..., s) -> (...).

    ``w`` must be a fresh array (it is overwritten): the walk runs in place, one buffer.
    """
    s = pos.shape[-1]
    total = w.sum(axis=-1, keepdims=True)
    safe = np.where(total > 0, total, 1).astype(w.dtype)
    # misses up to the k-th hit (0-based k at position p_k): p_k - k
    step = 1.0 / (n_genes - s) if n_genes > s else 0.0
    misses = (pos - np.arange(s, dtype=pos.dtype)).astype(w.dtype) * w.dtype.type(step)
    w /= safe
    walk = np.cumsum(w, axis=-1)
    walk -= misses
    top = walk.max(axis=-1)  # the walk just after each hit
    walk -= w
    bottom = walk.min(axis=-1)  # just before each hit
    top, bottom = np.maximum(top, 0), np.minimum(bottom, 0)  # the walk starts and ends at 0
    es = np.where(top > -bottom, top, bottom)
    es[total[..., 0] == 0] = 0
    return es


def _combine(es_up: np.ndarray, es_down: np.ndarray, has_up: bool, has_down: bool) -> np.ndarray:
    if has_up and has_down:
        differ = np.sign(es_up) != np.sign(es_down)
        return np.where(differ, (es_up - es_down) / 2.0, 0.0)
    return es_up if has_up else -es_down


def wtcs(profiles: np.ndarray, *, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Weighted connectivity score of every row of ``profiles`` (candidates x genes).

    ``up`` and ``down`` are column positions of the query's gene sets (either may be empty).
    Vectorised: one argsort per row, then work proportional to the sets' sizes.
    """
    x = np.asarray(profiles, dtype=np.float64)
    up, down = np.asarray(up, dtype=np.intp), np.asarray(down, dtype=np.intp)
    ranks, weights = rank_positions(x)
    es_up = _es(ranks, weights, up[None, :])[:, 0]
    es_down = _es(ranks, weights, down[None, :])[:, 0]
    return _combine(es_up, es_down, up.size > 0, down.size > 0)


@lru_cache(maxsize=16)
def _null_positions(
    n_genes: int, n_up: int, n_down: int, n_null: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions of ``n_null`` random disjoint up and down sets in a ranked list.

    A random gene set sits at a uniformly random subset of a row's positions whatever the row,
    so drawing positions is drawing gene sets (or permuting the profile's gene labels), without
    a per-row lookup and sort.
    """
    rng = np.random.default_rng(seed)
    keys = rng.random((n_null, n_genes))
    s = n_up + n_down
    idx = np.argpartition(keys, s - 1, axis=1)[:, :s] if s < n_genes else np.argsort(keys, 1)
    order = np.argsort(np.take_along_axis(keys, idx, axis=1), axis=1)
    both = np.take_along_axis(idx, order, axis=1).astype(np.int32)
    up, down = np.sort(both[:, :n_up], axis=1), np.sort(both[:, n_up:], axis=1)
    up.setflags(write=False)
    down.setflags(write=False)
    return up, down


def wtcs_null(
    profiles: np.ndarray, n_up: int, n_down: int, *, n_null: int = N_NULL, seed: int = 0
) -> np.ndarray:
    """WTCS of every row for ``n_null`` random set pairs of the query's sizes: (rows, n_null)."""
    x = np.asarray(profiles, dtype=np.float64)
    n, n_genes = x.shape
    # the null in 32 bits: half the memory traffic; its scores are compared, not reported
    weights = np.abs(np.sort(-x.astype(np.float32), axis=1))  # |x| from most up to most down
    up, down = _null_positions(n_genes, n_up, n_down, n_null, seed)
    step = max(1, _CHUNK_ELEMENTS // max(1, n * (n_up + n_down)))
    out = np.empty((n, n_null))
    for a in range(0, n_null, step):
        b = a + step
        es_up = _walk(weights[:, up[a:b]], up[a:b], n_genes) if n_up else 0
        es_down = _walk(weights[:, down[a:b]], down[a:b], n_genes) if n_down else 0
        out[:, a:b] = _combine(np.asarray(es_up), np.asarray(es_down), n_up > 0, n_down > 0)
    return out


def _unit_rows(x: np.ndarray, centre: bool) -> np.ndarray:
    if centre:
        x = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def similarity(
    profiles: np.ndarray, query: np.ndarray, *, method: Literal["cosine", "pearson"]
) -> np.ndarray:
    """Cosine or Pearson similarity of each row with one query vector (same genes)."""
    centre = method == "pearson"
    x = _unit_rows(np.asarray(profiles, dtype=np.float64), centre)
    return x @ _unit_rows(np.asarray(query, dtype=np.float64)[None, :], centre)[0]


def similarity_null(
    profiles: np.ndarray,
    query: np.ndarray,
    *,
    method: Literal["cosine", "pearson"],
    n_null: int = N_NULL,
    seed: int = 0,
) -> np.ndarray:
    """Similarity of every row with ``n_null`` permutations of the query: (rows, n_null)."""
    rng = np.random.default_rng(seed)
    q = np.asarray(query, dtype=np.float64)
    perms = rng.permuted(np.broadcast_to(q, (n_null, q.size)), axis=1)
    centre = method == "pearson"
    x = _unit_rows(np.asarray(profiles, dtype=np.float64), centre)
    return x @ _unit_rows(perms, centre).T


def normalise(scores: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NCS and tau of ``scores`` (rows,) against each row's ``null`` (rows, n_null).

    Each sign is divided by the mean absolute null score of that sign (the mean absolute null
    score of both signs when a row's null has none of it; 1 when that is 0).
    """
    obs = np.asarray(scores, dtype=np.float64)
    absnull = np.abs(null)
    overall = absnull.mean(axis=1)
    overall = np.where(overall > 0, overall, 1.0)

    def mean_of(mask: np.ndarray) -> np.ndarray:
        count = mask.sum(axis=1)
        total = np.where(mask, absnull, 0.0).sum(axis=1)
        mean = np.divide(total, count, out=overall.copy(), where=count > 0)
        return np.where(mean > 0, mean, overall)

    pos, neg = mean_of(null > 0), mean_of(null < 0)
    ncs = obs / np.where(obs >= 0, pos, neg)
    null_ncs = absnull / np.where(null >= 0, pos[:, None], neg[:, None])
    tau = np.sign(ncs) * 100.0 * (null_ncs < np.abs(ncs)[:, None]).mean(axis=1)
    return ncs, tau


def empirical_pvalues(
    scores: np.ndarray, null: np.ndarray, *, side: Literal["higher", "lower", "both"]
) -> np.ndarray:
    """``(1 + #null at least as extreme) / (1 + n_null)`` per row, on the given side."""
    obs = np.asarray(scores, dtype=np.float64)[:, None]
    if side == "higher":
        hits = null >= obs
    elif side == "lower":
        hits = null <= obs
    else:
        hits = np.abs(null) >= np.abs(obs)
    return (1.0 + hits.sum(axis=1)) / (1.0 + null.shape[1])


def connectivity_scores(
    profiles: np.ndarray,
    genes: Sequence[str],
    query: Query,
    *,
    method: Method = "wtcs",
    null: bool = False,
    n_null: int = N_NULL,
    seed: int = 0,
    min_genes: int = MIN_GENES,
    known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The score of every row and, with ``null=True``, its null (rows, n_null); else ``None``.

    ``known``: the rows' scores when already computed (only the null is then computed).
    """
    if method not in METHODS:
        raise ValueError(f"'method' must be one of {list(METHODS)} (got {method!r})")
    x = np.asarray(profiles, dtype=np.float64)
    if method == "wtcs":
        up, down = query.set_indices(genes, min_genes=min_genes)
        score = wtcs(x, up=up, down=down) if known is None else known
        return score, (wtcs_null(x, up.size, down.size, n_null=n_null, seed=seed) if null else None)
    vec, mask = query.score_vector(genes)
    if int(mask.sum()) < min_genes:
        raise ValueError(
            f"only {int(mask.sum())} of query {query.name!r}'s scored genes are among the "
            f"{len(genes)} genes scored; at least {min_genes} are needed. Fix: use the same gene "
            "identifiers as the model"
        )
    sub, q = x[:, mask], vec[mask]
    score = similarity(sub, q, method=method) if known is None else known
    nulls = similarity_null(sub, q, method=method, n_null=n_null, seed=seed) if null else None
    return score, nulls


def connectivity(
    profiles: np.ndarray | pd.DataFrame,
    query: Query,
    *,
    genes: Sequence[str] | None = None,
    method: Method = "wtcs",
    n_null: int = N_NULL,
    seed: int = 0,
    min_genes: int = MIN_GENES,
) -> pd.DataFrame:
    """Connectivity of each profile (row) with the query: score, NCS, tau, p-value and FDR.

    Parameters
    ----------
    profiles
        Candidates x genes; a DataFrame gives its own row labels and genes.
    query
        The query signature.
    genes
        Column names when ``profiles`` is an array.
    method
        ``"wtcs"`` (CMap's weighted connectivity score), ``"cosine"`` or ``"pearson"``.
    n_null, seed
        The null: random gene sets of the query's sizes (WTCS) or permutations of the query's
        scores (cosine, Pearson), the same for every row.

    Returns
    -------
    DataFrame
        One row per profile: ``score``, ``ncs``, ``tau`` (in ``[-100, 100]``), ``pvalue``
        (two-sided, against the null) and ``fdr`` (Benjamini-Hochberg over the rows).
    """
    if isinstance(profiles, pd.DataFrame):
        index, genes, x = profiles.index, list(profiles.columns.astype(str)), profiles.to_numpy()
    else:
        if genes is None:
            raise ValueError("pass 'genes' (the column names) with an array of profiles")
        x, index = np.asarray(profiles), pd.RangeIndex(len(profiles))
    score, null = connectivity_scores(
        x, genes, query, method=method, null=True, n_null=n_null, seed=seed, min_genes=min_genes
    )
    assert null is not None
    ncs, tau = normalise(score, null)
    pvalue = empirical_pvalues(score, null, side="both")
    return pd.DataFrame(
        {
            "score": score,
            "ncs": ncs,
            "tau": tau,
            "pvalue": pvalue,
            "fdr": benjamini_hochberg(pvalue),
        },
        index=index,
    )


def connectivity_matrix(
    profiles: np.ndarray | pd.DataFrame,
    queries: Sequence[Query],
    *,
    genes: Sequence[str] | None = None,
    method: Method = "wtcs",
    min_genes: int = MIN_GENES,
) -> pd.DataFrame:
    """The score of every profile (rows) with every query (columns), ranking each row once.

    The CMap layout: one column per query, so many queries against one library cost one sort
    of the library. Columns are the queries' names (made unique with a suffix when needed).
    """
    if isinstance(profiles, pd.DataFrame):
        index, genes, x = profiles.index, list(profiles.columns.astype(str)), profiles.to_numpy()
    else:
        if genes is None:
            raise ValueError("pass 'genes' (the column names) with an array of profiles")
        x, index = np.asarray(profiles, dtype=np.float64), pd.RangeIndex(len(profiles))
    if method not in METHODS:
        raise ValueError(f"'method' must be one of {list(METHODS)} (got {method!r})")
    out = np.empty((x.shape[0], len(queries)))
    if method == "wtcs":
        ranks, weights = rank_positions(x)
        for j, q in enumerate(queries):
            up, down = q.set_indices(genes, min_genes=min_genes)
            es_up = _es(ranks, weights, up[None, :])[:, 0]
            es_down = _es(ranks, weights, down[None, :])[:, 0]
            out[:, j] = _combine(es_up, es_down, up.size > 0, down.size > 0)
    else:
        for j, q in enumerate(queries):
            out[:, j] = connectivity_scores(x, genes, q, method=method, min_genes=min_genes)[0]
    names = pd.Index([q.name for q in queries], dtype=object)
    if names.has_duplicates:
        names = pd.Index([f"{n}#{i}" for i, n in enumerate(names)], dtype=object)
    return pd.DataFrame(out, index=index, columns=names)
