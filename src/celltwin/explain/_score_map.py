"""Score a called network (a causal or correlation map) against a known one (issue 19, point 5)."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
import pandas as pd

from ._causal import CausalMap


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["source"].astype(str), frame["target"].astype(str), strict=True))


def _truth_pairs(
    truth: pd.DataFrame, *, reach: bool, directed: bool, sources: set[str]
) -> set[tuple[str, str]]:
    pairs = _pairs(truth)
    if not directed:
        pairs |= {(b, a) for a, b in pairs}
    if not reach:
        return pairs
    graph = nx.DiGraph(list(pairs))
    return {(s, g) for s in sources if s in graph for g in nx.descendants(graph, s) if g != s}


def _signs(frame: pd.DataFrame) -> dict[tuple[str, str], int] | None:
    if "sign" not in frame.columns:
        return None
    return dict(zip(_pairs_list(frame), np.sign(frame["sign"]).astype(int), strict=True))


def _pairs_list(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["source"].astype(str), frame["target"].astype(str), strict=True))


def _universe(
    called: CausalMap | pd.DataFrame,
    truth: pd.DataFrame,
    sources: Iterable[str] | None,
    genes: Iterable[str] | None,
    overlap: bool,
    directed: bool,
) -> tuple[set[str], set[str]]:
    """The sources and genes scored (see :func:`score_map`)."""
    if isinstance(called, CausalMap):
        if sources is None:
            sources = called.tests["source"].astype(str).unique()
        if genes is None:
            genes = called.tests["target"].astype(str).unique()
    else:
        if sources is None:
            sources = called["source"].astype(str).unique()
        if genes is None:
            genes = set(called["target"].astype(str)) | set(truth["target"].astype(str))
    source_set, gene_set = {str(s) for s in sources}, {str(g) for g in genes}
    if overlap:
        known = set(truth["source"].astype(str)) | set(truth["target"].astype(str))
        source_set &= set(truth["source"].astype(str)) if directed else known
        gene_set &= known
    return source_set, gene_set


def _true_in(
    truth: pd.DataFrame, sources: set[str], genes: set[str], *, reach: bool, directed: bool
) -> set[tuple[str, str]]:
    true = _truth_pairs(truth, reach=reach, directed=directed, sources=sources)
    return {(s, g) for s, g in true if s in sources and g in genes and s != g}


def score_map(
    called: CausalMap | pd.DataFrame,
    truth: pd.DataFrame,
    *,
    sources: Iterable[str] | None = None,
    genes: Iterable[str] | None = None,
    reach: bool = False,
    directed: bool = True,
    overlap: bool = False,
    direction: int = -1,
) -> pd.Series:
    """Precision and recall of called ``source -> target`` edges against a known network.

    Parameters
    ----------
    called
        A :class:`CausalMap` (its called edges; the pairs it tested are the universe) or a
        DataFrame with ``source``, ``target`` and optionally ``sign``.
    truth
        Known edges, ``source``, ``target`` and optionally ``sign`` (e.g. the simulator's
        :attr:`celltwin.simulate.Simulation.grn`, DoRothEA as ``tf -> target``, STRING).
    sources, genes
        The universe of pairs scored: sources x genes minus self-pairs. Default: a
        CausalMap's tested sources and genes; for a DataFrame, its sources and every gene of
        ``called`` and ``truth``. Pass both when scoring several maps on the same cells.
    reach
        Take as true every gene a source reaches through the truth (direct and indirect
        effects), not only its direct targets.
    directed
        ``False`` for undirected truths (STRING): each edge counts both ways.
    overlap
        Score only sources and genes the truth knows (for prior networks covering part of the
        genes measured).
    direction
        Sign of the perturbation (-1 loss of function): a called edge's sign agrees with a true
        edge of sign ``s`` when it equals ``direction * s``.

    Returns
    -------
    pandas.Series
        ``pairs`` (universe size), ``true``, ``called``, ``true_positives``, ``precision``,
        ``recall``, ``f1``, ``sign_agreement`` (fraction of true positives whose sign agrees;
        NaN without signs or with ``reach``).
    """
    edges = called.edges if isinstance(called, CausalMap) else called
    source_set, gene_set = _universe(called, truth, sources, genes, overlap, directed)
    true = _true_in(truth, source_set, gene_set, reach=reach, directed=directed)
    hits = {(s, g) for s, g in _pairs_list(edges) if s in source_set and g in gene_set and s != g}
    tp = hits & true
    precision = len(tp) / len(hits) if hits else np.nan
    recall = len(tp) / len(true) if true else np.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else np.nan
    agreement = np.nan
    called_signs, true_signs = _signs(edges), _signs(truth)
    if tp and not reach and called_signs is not None and true_signs is not None:
        shared = [p for p in tp if p in true_signs]
        if shared:
            agree = [called_signs[p] == direction * true_signs[p] for p in shared]
            agreement = float(np.mean(agree))
    pairs = len(source_set) * len(gene_set) - len(source_set & gene_set)
    return pd.Series(
        {
            "pairs": pairs,
            "true": len(true),
            "called": len(hits),
            "true_positives": len(tp),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "sign_agreement": agreement,
        }
    )
