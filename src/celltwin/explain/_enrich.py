"""Gene-set enrichment of a response: over-representation of its up and down genes, and a
ranked-list test (issue 19, point 2).

Over-representation is the one-sided hypergeometric test (``scipy.stats.hypergeom``), the test of
Enrichr, g:Profiler and clusterProfiler. decoupler's ``ora`` is not used for it: decoupler 2.2
runs a two-sided Fisher test (depletion counts as enrichment) on its own choice of top genes.
The ranked-list test is decoupler's GSEA (``decoupler.mt.gsea``: running-sum enrichment score
normalised by a permutation null, BH over sets), wrapped as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats

from ..eval import benjamini_hochberg
from ..priors import read_gene_sets
from ._activity import _effects_frame

#: Gene-set collections read by name from the shared priors (:func:`celltwin.priors.read_gene_sets`).
GENE_SET_COLLECTIONS: tuple[str, ...] = ("hallmark", "c2cp", "go_bp", "kegg")
#: Columns of :attr:`Enrichment.ora`.
ORA_COLUMNS = (
    "condition", "direction", "set", "overlap", "set_size", "selected", "background",
    "odds_ratio", "pvalue", "fdr", "genes",
)  # fmt: skip
#: Columns of :attr:`Enrichment.ranked`.
RANKED_COLUMNS = ("condition", "set", "set_size", "nes", "fdr")


@dataclass(frozen=True)
class Enrichment:
    """Enrichment of the sets of one collection in each condition's response.

    Attributes
    ----------
    ora
        Over-representation (:data:`ORA_COLUMNS`), one row per (condition, direction, set):
        ``overlap`` of the ``selected`` up (or down) genes with the set's ``set_size`` measured
        genes among ``background`` measured genes; ``pvalue`` of the one-sided hypergeometric
        test; ``fdr`` by Benjamini-Hochberg over the sets of that condition and direction;
        ``genes`` the overlapping genes, ``,``-joined. Sorted by condition, direction, p-value.
    ranked
        GSEA on the whole ranked response (:data:`RANKED_COLUMNS`): ``nes`` > 0 when the set sits
        at the top (up), < 0 at the bottom; ``fdr`` BH-adjusted permutation p-values (0 means
        below ``1 / times``). Empty when the ranked test was not run.
    dropped
        Sets with fewer than ``min_size`` measured genes: index ``set``, columns ``measured``,
        ``size``.
    collection
        Name of the collection (``"custom"`` for the user's own sets).
    """

    ora: pd.DataFrame
    ranked: pd.DataFrame
    dropped: pd.DataFrame
    collection: str

    def top(self, n: int = 5, *, fdr: float = 0.05) -> pd.DataFrame:
        """The ``n`` most significant over-represented sets per condition and direction."""
        hits = self.ora[self.ora["fdr"] <= fdr]
        return hits.groupby(["condition", "direction"], sort=False).head(n).reset_index(drop=True)


def _gene_sets(
    gene_sets: str | Mapping[str, Sequence[str]],
) -> tuple[dict[str, list[str]], str]:
    if isinstance(gene_sets, str):
        if gene_sets not in GENE_SET_COLLECTIONS:
            raise ValueError(
                f"unknown gene-set collection {gene_sets!r}; choose one of "
                f"{list(GENE_SET_COLLECTIONS)} or pass {{set name: [genes]}}"
            )
        return read_gene_sets(name=gene_sets), gene_sets
    if not isinstance(gene_sets, Mapping) or not gene_sets:
        raise TypeError("gene_sets must be a collection name or a non-empty {set name: [genes]}")
    return {str(k): [str(g) for g in v] for k, v in gene_sets.items()}, "custom"


def _measured_sets(
    sets: dict[str, list[str]], genes: pd.Index, min_size: int, name: str
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Per kept set, the positions of its measured genes; and the dropped sets."""
    position = pd.Series(np.arange(len(genes)), index=genes)
    kept, rows = {}, []
    for set_name, members in sets.items():
        at = position.reindex(list(dict.fromkeys(members))).dropna().to_numpy(dtype=np.int64)
        if at.size >= min_size:
            kept[set_name] = np.sort(at)
        else:
            rows.append((set_name, int(at.size), len(set(members))))
    dropped = pd.DataFrame(rows, columns=["set", "measured", "size"]).set_index("set")
    if not kept:
        raise ValueError(
            f"no set of the {name} collection has min_size={min_size} measured genes (of "
            f"{len(genes)} genes, e.g. {list(genes[:3])}); use HGNC symbols or lower min_size"
        )
    return kept, dropped


def _selected(values: np.ndarray, n_top: int, direction: str) -> np.ndarray:
    """Positions of the ``n_top`` largest (``up``) or smallest (``down``) non-zero effects."""
    signed = values if direction == "up" else -values
    order = np.argsort(-signed, kind="stable")[:n_top]
    return np.sort(order[signed[order] > 0])


def over_representation(
    selected: np.ndarray, sets: Mapping[str, np.ndarray], n_background: int
) -> pd.DataFrame:
    """One-sided hypergeometric test of each set against one selection of gene positions.

    Returns columns ``set``, ``overlap``, ``set_size``, ``selected``, ``background``,
    ``odds_ratio`` (with 0.5 added to each cell), ``pvalue``, ``fdr`` and ``overlap_at``
    (positions of the overlapping genes).
    """
    chosen = np.zeros(n_background, dtype=bool)
    chosen[selected] = True
    n_sel = int(chosen.sum())
    rows = []
    for name, at in sets.items():
        hit = at[chosen[at]]
        k, size = hit.size, at.size
        # P(X >= k), X ~ hypergeom(M=background, n=set size, N=selected)
        p = float(stats.hypergeom.sf(k - 1, n_background, size, n_sel)) if n_sel else 1.0
        a, b, c = k + 0.5, n_sel - k + 0.5, size - k + 0.5
        d = n_background - n_sel - size + k + 0.5
        rows.append((name, k, size, n_sel, n_background, (a * d) / (b * c), p, hit))
    table = pd.DataFrame(
        rows,
        columns=["set", "overlap", "set_size", "selected", "background", "odds_ratio",
                 "pvalue", "overlap_at"],
    )  # fmt: skip
    table.insert(7, "fdr", benjamini_hochberg(table["pvalue"].to_numpy()))
    return table


def _gsea(
    frame: pd.DataFrame, sets: Mapping[str, np.ndarray], times: int, seed: int
) -> pd.DataFrame:
    try:
        import decoupler as dc
    except ImportError as err:  # optional dependency
        raise ImportError(
            "the ranked-list test needs decoupler: pip install 'celltwin[explain]' "
            "(or pass ranked=False)"
        ) from err
    genes = frame.columns.to_numpy()
    net = pd.DataFrame(
        [(name, genes[i]) for name, at in sets.items() for i in at], columns=["source", "target"]
    )
    # decoupler 2.2 does not shuffle at all when seed is 0 (``if seed:``): every set would get
    # p = 1. Shift the seed so every user seed, 0 included, draws permutations.
    nes, pvalues = dc.mt.gsea(
        data=frame, net=net, tmin=1, times=times, seed=seed + 1, empty=False, verbose=False
    )
    sizes = pd.Series({name: at.size for name, at in sets.items()})
    long = nes.stack().rename("nes").to_frame().join(pvalues.stack().rename("fdr"))
    long.index.names = ["condition", "set"]
    long = long.reset_index()
    long.insert(2, "set_size", long["set"].map(sizes).astype(np.int64))
    return long.sort_values(["condition", "fdr", "nes"], key=None).reset_index(drop=True)


def enrichment(
    effects: pd.Series | pd.DataFrame | AnnData,
    *,
    gene_sets: str | Mapping[str, Sequence[str]] = "hallmark",
    n_top: int = 100,
    min_size: int = 5,
    ranked: bool = True,
    times: int = 1000,
    seed: int = 0,
) -> Enrichment:
    """Gene-set enrichment of the up and down genes of each response, and of its ranking.

    Parameters
    ----------
    effects
        A genes-indexed Series (one response), a conditions x genes DataFrame, or an AnnData
        with one condition per row (``layers['delta']`` when present, else ``X``), as for
        :func:`activity`.
    gene_sets
        A collection of the shared priors (:data:`GENE_SET_COLLECTIONS`: Hallmark, Reactome/KEGG
        canonical pathways, GO biological process, KEGG) or the user's ``{set: [genes]}``.
    n_top
        Up genes: the ``n_top`` largest positive effects; down genes: the ``n_top`` most
        negative. The background is every measured gene.
    min_size
        Sets with fewer measured genes are dropped and listed in :attr:`Enrichment.dropped`.
    ranked
        Also run decoupler's GSEA on the whole ranking (``times`` permutations, ``seed``).

    Returns
    -------
    Enrichment
        Over-representation per condition, direction and set; the ranked test; dropped sets.
    """
    for key, value, low in (("n_top", n_top, 1), ("min_size", min_size, 1), ("times", times, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, not {value!r}")
    frame = _effects_frame(effects)
    sets, name = _gene_sets(gene_sets)
    kept, dropped = _measured_sets(sets, frame.columns, min_size, name)
    genes = frame.columns.to_numpy()
    parts = []
    for condition, values in zip(frame.index, frame.to_numpy(), strict=True):
        for direction in ("up", "down"):
            table = over_representation(_selected(values, n_top, direction), kept, genes.size)
            table.insert(0, "condition", condition)
            table.insert(1, "direction", direction)
            parts.append(table.sort_values("pvalue", kind="stable"))
    ora = pd.concat(parts, ignore_index=True)
    ora["genes"] = [",".join(genes[at]) for at in ora.pop("overlap_at")]
    ora = ora[list(ORA_COLUMNS)]
    gsea = _gsea(frame, kept, times, seed) if ranked else pd.DataFrame(columns=RANKED_COLUMNS)
    return Enrichment(ora=ora, ranked=gsea, dropped=dropped, collection=name)
