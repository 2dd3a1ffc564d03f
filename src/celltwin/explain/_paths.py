"""Regulatory paths from a perturbed target to the genes its perturbation moved most
(issue 19, point 3).

The prior network is directed and signed: DoRothEA's TF -> target edges carry their mode of
regulation (+1 activation, -1 repression); STRING's protein links carry no direction and no sign,
so each is added both ways and taken as transmitting the signal unchanged (the usual reading of
a signalling cascade, receptor -> kinase -> TF). A path's sign is the product of its edges'.

Sign agreement: a loss-of-function perturbation (``direction=-1``: knockout, CRISPRi, inhibitor)
of the target moves a gene reached by a path of sign ``s`` in direction ``-s``; a gain of
function (``+1``: CRISPRa, agonist) in direction ``s``. The shortest path with the required sign is
found in one search from the target over the doubled graph whose nodes are (gene, sign so far): an
edge ``u -> v`` of sign ``e`` links ``(u, s)`` to ``(v, s * e)``. A gene can then appear twice on a
path (once per sign); such paths are dropped (counted in ``reason``). Among equally short
paths, the one with fewer unsigned STRING steps is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import networkx as nx
import numpy as np
import pandas as pd

from ..priors import read_dorothea, read_string
from ._activity import _effects_frame

#: Prior networks :func:`regulatory_paths` reads by name.
PRIOR_NETWORKS: tuple[str, ...] = ("dorothea", "string")
#: Columns of :func:`regulatory_paths`' table.
PATH_COLUMNS = (
    "condition", "source", "gene", "effect", "found", "length", "sign", "path", "edges",
    "unsigned_steps", "reason",
)  # fmt: skip
#: Edge kinds in :func:`prior_network` (``kind`` attribute).
SIGNED, UNSIGNED = "dorothea", "string"
#: Extra cost of an unsigned step: breaks ties between equally short paths, never length.
_UNSIGNED_COST = 1e-3


def prior_network(
    networks: Sequence[str] | pd.DataFrame = PRIOR_NETWORKS,
    *,
    confidence: str = "ABC",
    min_score: int = 700,
) -> nx.DiGraph:
    """The directed, signed prior network, edges with attributes ``sign`` and ``kind``.

    Parameters
    ----------
    networks
        Names among :data:`PRIOR_NETWORKS`, or the user's own edges: a DataFrame with columns
        ``source``, ``target`` and ``sign`` (+1, -1, or 0 for an unsigned link, added both ways).
    confidence
        DoRothEA confidence levels kept.
    min_score
        STRING combined score kept (700 = high confidence).
    """
    if isinstance(networks, pd.DataFrame):
        missing = {"source", "target", "sign"} - set(networks.columns)
        if missing:
            raise ValueError(f"the network lacks column(s) {sorted(missing)}; it needs "
                             "source, target, sign (+1, -1, or 0 for unsigned links)")  # fmt: skip
        table = networks[["source", "target", "sign"]]
        signed = table[np.sign(table["sign"]) != 0]
        unsigned = table[np.sign(table["sign"]) == 0]
    else:
        bad = [n for n in networks if n not in PRIOR_NETWORKS]
        if bad or not networks:
            raise ValueError(f"unknown prior network(s) {bad}; choose from {list(PRIOR_NETWORKS)}")
        signed = unsigned = pd.DataFrame(columns=["source", "target", "sign"])
        if "dorothea" in networks:
            d = read_dorothea(confidence=confidence)
            signed = d.rename(columns={"tf": "source", "mor": "sign"})
        if "string" in networks:
            s = read_string(min_score=min_score)
            unsigned = s.rename(columns={"gene_a": "source", "gene_b": "target"}).assign(sign=0)
    graph = nx.DiGraph()
    for a, b in zip(unsigned["source"].astype(str), unsigned["target"].astype(str), strict=True):
        if a != b:
            graph.add_edge(a, b, sign=1, kind=UNSIGNED)
            graph.add_edge(b, a, sign=1, kind=UNSIGNED)
    # signed edges last: where both know a pair, the signed one wins
    for a, b, s in zip(signed["source"].astype(str), signed["target"].astype(str),
                       np.sign(signed["sign"].to_numpy(dtype=float)).astype(int), strict=True):  # fmt: skip
        if a != b:
            graph.add_edge(a, b, sign=int(s), kind=SIGNED)
    return graph


def _doubled(graph: nx.DiGraph) -> nx.DiGraph:
    """Nodes (gene, sign so far); edge u -> v of sign e links (u, s) to (v, s * e)."""
    doubled = nx.DiGraph()
    for u, v, data in graph.edges(data=True):
        # among equally short paths, prefer signed (DoRothEA) steps to unsigned STRING links
        cost = 1.0 + (_UNSIGNED_COST if data["kind"] == UNSIGNED else 0.0)
        for s in (1, -1):
            doubled.add_edge((u, s), (v, s * data["sign"]), cost=cost)
    return doubled


def _path_row(graph: nx.DiGraph, path: list[tuple[str, int]]) -> dict[str, object]:
    genes = [g for g, _ in path]
    pairs = list(pairwise(genes))
    kinds = [graph.edges[a, b]["kind"] for a, b in pairs]
    signs = [graph.edges[a, b]["sign"] for a, b in pairs]
    steps = [
        f"{a}{'->' if s > 0 else '-|'}{b}" + ("" if k == SIGNED else " (string)")
        for (a, b), s, k in zip(pairs, signs, kinds, strict=True)
    ]
    return {
        "found": True,
        "length": len(genes) - 1,
        "sign": int(path[-1][1]),
        "path": " > ".join(genes),
        "edges": "; ".join(steps),
        "unsigned_steps": sum(k == UNSIGNED for k in kinds),
        "reason": "",
    }


def _one_path(
    graph: nx.DiGraph,
    reached: dict[tuple[str, int], list[tuple[str, int]]],
    source: str,
    gene: str,
    need: int,
    max_length: int,
) -> dict[str, object]:
    empty: dict[str, object] = {"found": False, "length": np.nan, "sign": 0, "path": "",
                                "edges": "", "unsigned_steps": 0}  # fmt: skip
    if source not in graph:
        return {**empty, "reason": f"{source} is not in the prior network"}
    if gene not in graph:
        return {**empty, "reason": f"{gene} is not in the prior network"}
    path = reached.get((gene, need))
    if path is None:
        return {**empty, "reason": f"no path of at most max_length={max_length} steps with a "
                                   "sign agreeing with the response"}  # fmt: skip
    if len({g for g, _ in path}) < len(path):
        return {**empty, "reason": "shortest agreeing path passes a gene twice"}
    return _path_row(graph, path)


def regulatory_paths(
    effects: pd.Series | pd.DataFrame,
    targets: str | Sequence[str] | dict[str, Sequence[str]],
    *,
    network: Sequence[str] | pd.DataFrame | nx.DiGraph = ("dorothea",),
    direction: int | Mapping[str, int] = -1,
    n_genes: int = 20,
    max_length: int = 3,
) -> pd.DataFrame:
    """Shortest signed prior-network paths from perturbed targets to their most affected genes.

    Parameters
    ----------
    effects
        One response (genes-indexed Series) or conditions x genes DataFrame.
    targets
        The perturbed gene(s): one name or a list (applied to every condition), or
        ``{condition: [genes]}``. A combination ``A+B`` lists both.
    network
        Names among :data:`PRIOR_NETWORKS` (DoRothEA's signed regulons, STRING's unsigned
        protein links), a user's edge table (see :func:`prior_network`) or a built graph.
    direction
        ``-1`` loss of function (knockout, CRISPRi, inhibitor), ``+1`` gain (CRISPRa, agonist);
        or ``{condition: -1 or +1}``.
    n_genes
        The ``n_genes`` genes with the largest absolute effect, targets excluded, per condition.
    max_length
        Longer paths are not reported (``found`` False, with the reason).

    Returns
    -------
    pandas.DataFrame
        :data:`PATH_COLUMNS`, one row per (condition, source, affected gene), genes in order of
        decreasing absolute effect: ``path`` (genes, ``' > '``-joined), ``edges`` (``A->B``
        activation, ``A-|B`` repression, ``(string)`` unsigned), ``sign`` of the path, and
        ``reason`` when no agreeing path was found.
    """
    frame = _effects_frame(effects)
    signs = direction if isinstance(direction, Mapping) else dict.fromkeys(frame.index, direction)
    bad = {c: d for c, d in signs.items() if d not in (-1, 1)}
    if bad or set(frame.index) - set(signs):
        raise ValueError(
            f"direction must be -1 (loss of function) or +1 (gain) for every condition, not "
            f"{direction!r}"
        )
    graph = network if isinstance(network, nx.DiGraph) else prior_network(network)
    doubled = _doubled(graph)
    per_condition = _targets(targets, list(frame.index))
    bfs: dict[str, dict[tuple[str, int], list[tuple[str, int]]]] = {}
    rows = []
    for condition, values in frame.iterrows():
        sources = per_condition[str(condition)]
        for source in sources:
            if source not in bfs and source in graph:
                bfs[source] = nx.single_source_dijkstra_path(
                    doubled, (source, 1), cutoff=max_length + 0.5, weight="cost"
                )
        moved = values.drop([s for s in sources if s in values.index])
        moved = moved[moved != 0]
        top = moved.reindex(moved.abs().sort_values(ascending=False, kind="stable").index)
        for gene, effect in top.iloc[:n_genes].items():
            need = int(np.sign(effect)) * signs[str(condition)]
            for source in sources:
                reached = bfs.get(source, {})
                row = _one_path(graph, reached, source, str(gene), need, max_length)
                rows.append({"condition": condition, "source": source, "gene": gene,
                             "effect": float(effect), **row})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(PATH_COLUMNS))
    return table.astype({"found": bool, "unsigned_steps": np.int64, "sign": np.int64})


def _targets(
    targets: str | Sequence[str] | dict[str, Sequence[str]], conditions: list[str]
) -> dict[str, list[str]]:
    if isinstance(targets, dict):
        missing = [c for c in conditions if c not in targets]
        if missing:
            raise KeyError(f"targets has no entry for condition(s) {missing[:5]}; give each "
                           "condition its perturbed gene(s)")  # fmt: skip
        return {c: [str(t) for t in targets[c]] for c in conditions}
    genes = [targets] if isinstance(targets, str) else [str(t) for t in targets]
    if not genes:
        raise ValueError("targets is empty; name the perturbed gene(s)")
    return dict.fromkeys(conditions, genes)
