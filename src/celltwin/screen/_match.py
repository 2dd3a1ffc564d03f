"""The *reverse* and *mimic* objectives: connectivity of each candidate with a query signature."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ._connectivity import (
    METHODS,
    OBJECTIVE_N_NULL,
    Method,
    connectivity_scores,
    empirical_pvalues,
    normalise,
)
from ._objective import Direction, Objective
from ._query import MIN_GENES, N_GENES, Query, query_from_scores, read_query

Statistic = Literal["score", "ncs", "tau"]
STATISTICS: tuple[str, ...] = ("score", "ncs", "tau")

NULL = (
    "random up/down gene sets of the query's sizes (WTCS) or permutations of the query's scores "
    "(cosine, Pearson), n_null of them, the same for every candidate"
)


def as_query(query: Query | pd.Series | Mapping[str, float] | str | os.PathLike[str]) -> Query:
    """A :class:`Query` from a Query, gene scores or a query file (:func:`read_query`)."""
    if isinstance(query, Query):
        return query
    if isinstance(query, str | os.PathLike):
        return read_query(query)
    if isinstance(query, pd.Series | Mapping):
        return query_from_scores(query, n_genes=N_GENES)
    raise TypeError(
        "'query' must be a Query, a gene-indexed Series of scores, or a query file path "
        f"(got {type(query).__name__})"
    )


def _connectivity_objective(
    name: str,
    direction: Direction,
    query: Query | pd.Series | Mapping[str, float] | str | os.PathLike[str],
    method: Method,
    statistic: Statistic,
    n_null: int,
    seed: int,
    min_genes: int,
) -> Objective:
    q = as_query(query)
    if method not in METHODS:
        raise ValueError(f"'method' must be one of {list(METHODS)} (got {method!r})")
    if statistic not in STATISTICS:
        raise ValueError(f"'statistic' must be one of {list(STATISTICS)} (got {statistic!r})")
    if isinstance(n_null, bool) or not isinstance(n_null, int) or n_null < 1:
        raise ValueError(f"'n_null' must be a positive integer (got {n_null!r})")

    def scorer(x: np.ndarray, genes: Sequence[str], _u: np.ndarray | None) -> np.ndarray:
        need_null = statistic != "score"
        score, null = connectivity_scores(
            x, genes, q, method=method, null=need_null, n_null=n_null, seed=seed,
            min_genes=min_genes,
        )  # fmt: skip
        if null is None:
            return score
        ncs, tau = normalise(score, null)
        return ncs if statistic == "ncs" else tau

    def tester(
        x: np.ndarray, genes: Sequence[str], scores: np.ndarray, _u: np.ndarray | None
    ) -> np.ndarray:
        # NCS and tau are increasing in the raw score within a row: one p-value serves all three.
        score, null = connectivity_scores(
            x, genes, q, method=method, null=True, n_null=n_null, seed=seed,
            min_genes=min_genes, known=scores if statistic == "score" else None,
        )  # fmt: skip
        assert null is not None
        return empirical_pvalues(score, null, side=direction)

    verb = "mimics" if direction == "higher" else "reverses"
    return Objective(
        name=name,
        direction=direction,
        null=NULL,
        description=(
            f"how strongly each candidate {verb} query {q.name!r} ({method}, {statistic}; "
            f"{len(q.up)} up / {len(q.down)} down genes)"
        ),
        scorer=scorer,
        tester=tester,
        params={
            "query": q.name,
            "method": method,
            "statistic": statistic,
            "n_null": n_null,
            "seed": seed,
            "min_genes": min_genes,
        },
    )


def reverse(
    query: Query | pd.Series | Mapping[str, float] | str | os.PathLike[str],
    *,
    method: Method = "wtcs",
    statistic: Statistic = "score",
    n_null: int = OBJECTIVE_N_NULL,
    seed: int = 0,
    min_genes: int = MIN_GENES,
) -> Objective:
    """Candidates that reverse the query: the most negative connectivity first.

    Parameters
    ----------
    query
        A :class:`Query`, gene scores (up: positive) or a query file (:func:`read_query`).
    method
        ``"wtcs"`` (CMap's weighted connectivity score on the query's up/down sets),
        ``"cosine"`` or ``"pearson"`` (on the query's scores).
    statistic
        ``"score"`` (the raw method score, the cheapest), ``"ncs"`` or ``"tau"`` (normalised
        against each candidate's null; see :mod:`celltwin.screen._connectivity`).
    n_null, seed
        Size and seed of the null behind the p-values (and NCS/tau).
    min_genes
        Fewest query genes that must be among the model's genes.
    """
    return _connectivity_objective(
        "reverse", "lower", query, method, statistic, n_null, seed, min_genes
    )


def mimic(
    query: Query | pd.Series | Mapping[str, float] | str | os.PathLike[str],
    *,
    method: Method = "wtcs",
    statistic: Statistic = "score",
    n_null: int = OBJECTIVE_N_NULL,
    seed: int = 0,
    min_genes: int = MIN_GENES,
) -> Objective:
    """Candidates that mimic the query: the most positive connectivity first.

    Parameters are those of :func:`reverse`.
    """
    return _connectivity_objective(
        "mimic", "higher", query, method, statistic, n_null, seed, min_genes
    )
