"""A causal map from perturbation data: perturbed target -> gene edges with effect sizes and FDR
(issue 19, point 5), and how to score a map against a known network.

Each single perturbation is compared with the control cells of its context by the project's DE
engine (:func:`celltwin.eval.rank_sum_test`: Wilcoxon rank-sum, BH over genes per perturbation).
An edge ``target -> gene`` is called when its FDR is below ``alpha``; with several contexts, the
edge's FDR is the smallest over contexts times their number (Bonferroni over contexts) and its
effect is the mean over contexts. A perturbation moves every gene downstream of its target, so
the map holds direct and indirect effects: scored against a TF -> gene network, indirect effects
count as false positives unless the truth is taken as what each target reaches
(:func:`score_map` with ``reach=True``).

:func:`correlation_map` is the observational alternative computed from the same cells: the
Pearson correlation of each target's expression with every gene, tested as a t-statistic.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse, stats

from .._keys import COMBO_SEP, CONTEXT, CONTROL, PERTURBATION
from ..eval import benjamini_hochberg, group_means, rank_sum_test

#: Columns of :attr:`CausalMap.tests` (one row per context, perturbation and gene).
TEST_COLUMNS = (CONTEXT, "source", "target", "delta", "log2_fold_change", "pvalue", "fdr")
#: Columns of :attr:`CausalMap.edges` (called edges, combined over contexts).
EDGE_COLUMNS = ("source", "target", "sign", "delta", "log2_fold_change", "fdr", "n_contexts")


@dataclass(frozen=True)
class CausalMap:
    """A directed perturbed target -> gene network measured by perturbations.

    Attributes
    ----------
    tests
        Every tested (context, source, target): ``delta`` (mean log1p expression minus the
        control's), ``log2_fold_change`` and the rank-sum ``pvalue`` and ``fdr``
        (:data:`TEST_COLUMNS`).
    edges
        The called edges (:data:`EDGE_COLUMNS`), sorted by FDR: ``sign`` +1 (the perturbation
        raises the gene) or -1, ``delta`` and ``log2_fold_change`` averaged over contexts,
        ``fdr`` the Bonferroni-combined FDR, ``n_contexts`` where it was tested.
    alpha
        FDR threshold of :attr:`edges`.
    skipped
        Perturbations not in the map and why (combinations, no cells in a context).
    """

    tests: pd.DataFrame
    edges: pd.DataFrame
    alpha: float
    skipped: dict[str, str]

    def to_graph(self) -> nx.DiGraph:
        """The called edges as a networkx DiGraph (edge attributes from :attr:`edges`)."""
        graph = nx.DiGraph()
        for row in self.edges.itertuples(index=False):
            attrs = {c: getattr(row, c) for c in EDGE_COLUMNS[2:]}
            graph.add_edge(row.source, row.target, **_plain(attrs))
        return graph

    def write(self, path: str | os.PathLike[str], *, name: str = "causal_map") -> list[Path]:
        """Write ``<name>.csv`` (the edges) and ``<name>.graphml`` into directory ``path``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        csv, graphml = folder / f"{name}.csv", folder / f"{name}.graphml"
        self.edges.to_csv(csv, index=False)
        nx.write_graphml(self.to_graph(), graphml)
        return [csv, graphml]


def _plain(attrs: dict[str, object]) -> dict[str, object]:
    """numpy scalars as Python ones (GraphML writes only those)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()}


def _dense(x: object) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)  # type: ignore[attr-defined]


def _check_screen(adata: AnnData, alpha: float) -> None:
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData of cells, not {type(adata).__name__}")
    missing = [k for k in (PERTURBATION, CONTEXT) if k not in adata.obs.columns]
    if missing:
        raise KeyError(
            f"obs lacks {missing}; a screen needs obs['{PERTURBATION}'] and obs['{CONTEXT}'] "
            "(see celltwin.io.prepare)"
        )
    if not (adata.obs[PERTURBATION].astype(str) == CONTROL).any():
        raise ValueError(
            f"no control cells (obs['{PERTURBATION}'] == '{CONTROL}'): a causal map compares "
            "each perturbation with its context's controls"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")


def _context_tests(adata: AnnData, context: str, skipped: dict[str, str]) -> pd.DataFrame:
    labels = adata.obs[PERTURBATION].astype(str).to_numpy()
    if (labels == CONTROL).sum() == 0:
        for p in sorted(set(labels)):
            skipped.setdefault(p, f"context {context!r} has no control cells")
        return pd.DataFrame(columns=list(TEST_COLUMNS))
    de = rank_sum_test(adata.X, labels, control=CONTROL)
    names, means = group_means(adata.X, labels)
    mean_of = dict(zip(names.tolist(), means, strict=True))
    genes = adata.var_names.astype(str).to_numpy()
    parts = []
    for i, source in enumerate(de.groups.tolist()):
        if COMBO_SEP in source:
            skipped[source] = "a combination: its edges are not one target's"
            continue
        keep = genes != source
        parts.append(
            pd.DataFrame(
                {
                    CONTEXT: context,
                    "source": source,
                    "target": genes[keep],
                    "delta": (mean_of[source] - mean_of[CONTROL])[keep],
                    "log2_fold_change": de.log2_fold_change[i][keep],
                    "pvalue": de.pvalue[i][keep],
                    "fdr": de.fdr[i][keep],
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=TEST_COLUMNS)


def _combine(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    grouped = tests.groupby(["source", "target"], sort=True)
    edges = grouped.agg(
        delta=("delta", "mean"),
        log2_fold_change=("log2_fold_change", "mean"),
        fdr=("fdr", "min"),
        n_contexts=("fdr", "size"),
    ).reset_index()
    edges["fdr"] = np.minimum(1.0, edges["fdr"] * edges["n_contexts"])
    edges = edges[edges["fdr"] < alpha]
    edges.insert(2, "sign", np.sign(edges["delta"]).astype(np.int64))
    edges = edges.sort_values(["fdr", "source", "target"], kind="stable")
    return edges[list(EDGE_COLUMNS)].reset_index(drop=True)


def causal_map(adata: AnnData, *, alpha: float = 0.05) -> CausalMap:
    """Directed perturbed target -> gene network from a screen, with effect sizes and FDR.

    Parameters
    ----------
    adata
        Canonical cells x genes (log1p-normalised ``X``) with ``obs['perturbation']`` (control
        cells labelled ``"control"``) and ``obs['context']``, e.g. a CRISPR screen or
        :func:`celltwin.simulate.simulate`'s cells.
    alpha
        FDR below which an edge is called.

    Returns
    -------
    CausalMap
        All tests, the called edges, and what was skipped.
    """
    _check_screen(adata, alpha)
    skipped: dict[str, str] = {}
    parts = []
    for context in sorted(adata.obs[CONTEXT].astype(str).unique()):
        mask = (adata.obs[CONTEXT].astype(str) == context).to_numpy()
        parts.append(_context_tests(adata[mask], context, skipped))
    tests = pd.concat(parts, ignore_index=True)
    return CausalMap(tests=tests, edges=_combine(tests, alpha), alpha=alpha, skipped=skipped)


def correlation_map(
    adata: AnnData, *, sources: Sequence[str] | None = None, alpha: float = 0.05
) -> CausalMap:
    """Correlation network from the same cells: each source gene's expression against every gene.

    Per context, the Pearson correlation over all its cells (perturbed and control) of the
    source's ``X`` column with each other gene's, tested with ``t = r sqrt((n-2)/(1-r^2))``; BH
    over the genes of each source, then Bonferroni over contexts as in :func:`causal_map`.
    Each context's cells x genes matrix is held dense in float64 (a baseline for benchmarks on
    screens of up to some 10^5 cells x 10^3 genes, not an atlas tool).

    Parameters
    ----------
    adata
        As for :func:`causal_map`.
    sources
        Genes whose edges are tested; default the measured genes that are perturbed.
    alpha
        FDR below which an edge is called.

    Returns
    -------
    CausalMap
        The same tables as :func:`causal_map`'s, with the correlation ``r`` in the ``delta``
        columns and ``log2_fold_change`` NaN.
    """
    _check_screen(adata, alpha)
    genes = adata.var_names.astype(str)
    if sources is None:
        perturbed = set(adata.obs[PERTURBATION].astype(str)) - {CONTROL}
        sources = [g for g in genes if g in perturbed]
    sources = [s for s in sources if s in set(genes)]
    if not sources:
        raise ValueError("no source gene is measured: pass sources=[genes in var_names]")
    parts = []
    for context in sorted(adata.obs[CONTEXT].astype(str).unique()):
        x = _dense(adata[(adata.obs[CONTEXT].astype(str) == context).to_numpy()].X)
        parts.append(_correlation_tests(x.astype(np.float64), genes, sources, context))
    tests = pd.concat(parts, ignore_index=True)
    return CausalMap(tests=tests, edges=_combine(tests, alpha), alpha=alpha, skipped={})


def _correlation_tests(
    x: np.ndarray, genes: pd.Index, sources: list[str], context: str
) -> pd.DataFrame:
    n = x.shape[0]
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, np.inf)
    at = genes.get_indexer(sources)
    r = np.clip(z[:, at].T @ z / n, -1.0, 1.0)  # sources x genes
    t = r * np.sqrt((n - 2) / np.maximum(1e-12, 1 - r**2))
    p = 2 * stats.t.sf(np.abs(t), df=n - 2)
    keep = np.ones_like(p, dtype=bool)
    keep[np.arange(len(at)), at] = False  # no self-pairs
    src, tgt = np.nonzero(keep)
    pvalue = p[src, tgt]
    fdr = benjamini_hochberg(p[keep].reshape(len(at), -1), axis=1).ravel()
    return pd.DataFrame(
        {
            CONTEXT: context,
            "source": np.asarray(sources)[src],
            "target": genes.to_numpy()[tgt],
            "delta": r[src, tgt],
            "log2_fold_change": np.nan,
            "pvalue": pvalue,
            "fdr": fdr,
        }
    )
