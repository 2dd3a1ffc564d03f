"""Query signatures for connectivity screens: gene scores and/or up and down gene sets.

A :class:`Query` is what a *reverse* or *mimic* screen compares each candidate with. It comes from
a table of gene scores (:func:`query_from_scores`), two gene sets (:func:`query_from_sets`), a
ranked gene list (:func:`query_from_ranks`), two groups of cells of an AnnData
(:func:`query_from_groups`, through the project's Wilcoxon DE engine) or a file
(:func:`read_query`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from ..eval import rank_sum_test

#: Genes per set taken from scores or ranks when a query is built (the CMap 2017 queries hold
#: 10-150 genes per set; 150 is the largest it accepts).
N_GENES: int = 150
#: Fewest query genes that must be among the scored genes before a screen runs.
MIN_GENES: int = 10


def _genes(values: Iterable[object], key: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ValueError(f"'{key}' must be a list of gene names, not the string {values!r}")
    out = tuple(dict.fromkeys(str(g) for g in values))
    if any(not g for g in out):
        raise ValueError(f"'{key}' holds an empty gene name")
    return out


@dataclass(frozen=True)
class Query:
    """A query signature: per-gene scores and/or the up and down gene sets.

    Attributes
    ----------
    scores
        Gene-indexed scores (positive: up in the query state), or ``None`` when the query is only
        gene sets. Cosine and Pearson objectives use them; without them a gene of ``up`` scores
        ``+1``, of ``down`` ``-1`` and every other gene ``0``.
    up, down
        Disjoint gene sets; the weighted connectivity score (WTCS) uses them.
    name
        A label for tables and pages.
    """

    scores: pd.Series | None = None
    up: tuple[str, ...] = ()
    down: tuple[str, ...] = ()
    name: str = "query"

    def __post_init__(self) -> None:
        object.__setattr__(self, "up", _genes(self.up, "up"))
        object.__setattr__(self, "down", _genes(self.down, "down"))
        both = sorted(set(self.up) & set(self.down))
        if both:
            raise ValueError(f"genes {both[:5]} are in both 'up' and 'down'; a gene has one sign")
        if self.scores is not None:
            s = pd.Series(self.scores, dtype=np.float64)
            s.index = s.index.astype(str)
            if s.index.has_duplicates:
                dup = sorted(set(s.index[s.index.duplicated()]))[:5]
                raise ValueError(f"query 'scores' has duplicated genes {dup}; keep one per gene")
            if not np.isfinite(s.to_numpy()).all():
                raise ValueError("query 'scores' holds NaN or infinite values; drop those genes")
            object.__setattr__(self, "scores", s)
        if self.scores is None and not (self.up or self.down):
            raise ValueError("a query needs 'scores' or at least one of 'up' and 'down'")

    def __neg__(self) -> Query:
        """The opposite signature: scores negated, up and down swapped."""
        scores = None if self.scores is None else -self.scores
        return Query(scores, up=self.down, down=self.up, name=f"-{self.name}")

    def score_vector(self, genes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Query scores over ``genes`` and the mask of genes the query scores.

        Without ``scores``: ``+1`` on ``up``, ``-1`` on ``down``, ``0`` elsewhere, every gene
        scored.
        """
        index = pd.Index(list(genes), dtype=object)
        if self.scores is None:
            vec = np.zeros(len(index))
            vec[index.isin(self.up)] = 1.0
            vec[index.isin(self.down)] = -1.0
            return vec, np.ones(len(index), dtype=bool)
        aligned = self.scores.reindex(index)
        mask = aligned.notna().to_numpy()
        return aligned.fillna(0.0).to_numpy(), mask

    def set_indices(
        self, genes: Sequence[str], *, min_genes: int = MIN_GENES
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``genes`` of the ``up`` and ``down`` genes that are there.

        Raises a ValueError naming the counts when fewer than ``min_genes`` are found.
        """
        index = pd.Index(list(genes), dtype=object)
        up = index.get_indexer(list(self.up))
        down = index.get_indexer(list(self.down))
        up, down = up[up >= 0], down[down >= 0]
        if up.size + down.size < min_genes:
            raise ValueError(
                f"only {up.size + down.size} of query {self.name!r}'s genes are among the "
                f"{len(index)} genes scored ('up': {up.size} of {len(self.up)}, 'down': "
                f"{down.size} of {len(self.down)}); at least {min_genes} are needed. Fix: use "
                f"the same gene identifiers as the model (e.g. {list(index[:3])}), or lower "
                "'min_genes'"
            )
        return np.sort(up), np.sort(down)


def _top_sets(scores: pd.Series, n_genes: int) -> tuple[list[str], list[str]]:
    if isinstance(n_genes, bool) or not isinstance(n_genes, int) or n_genes < 1:
        raise ValueError(f"'n_genes' must be a positive integer (got {n_genes!r})")
    ordered = scores.sort_values(ascending=False, kind="stable")
    up = ordered[ordered > 0].index[:n_genes]
    down = ordered[ordered < 0].index[::-1][:n_genes]
    return list(up), list(down)


def query_from_scores(
    scores: pd.Series | Mapping[str, float], *, n_genes: int = N_GENES, name: str = "query"
) -> Query:
    """A query from gene scores: ``up`` = the ``n_genes`` highest positive, ``down`` the lowest.

    Examples
    --------
    >>> q = query_from_scores({"A": 2.0, "B": -1.0, "C": 0.5}, n_genes=1)
    >>> q.up, q.down
    (('A',), ('B',))
    """
    s = pd.Series(scores, dtype=np.float64)
    s.index = s.index.astype(str)
    up, down = _top_sets(s, n_genes)
    return Query(s, up=tuple(up), down=tuple(down), name=name)


def query_from_ranks(
    ranked: Sequence[str], *, n_genes: int = N_GENES, name: str = "query"
) -> Query:
    """A query from genes ranked from most up to most down.

    ``up`` = the first ``n_genes``, ``down`` = the last ``n_genes`` (fewer when the list is
    short: each side takes at most half); scores are centred ranks, ``1 - 2 r / (n - 1)``.
    """
    genes = _genes(ranked, "ranked")
    n = len(genes)
    if n < 2:
        raise ValueError(f"a ranked query needs at least 2 genes (got {n})")
    k = min(n_genes, n // 2)
    scores = pd.Series(1.0 - 2.0 * np.arange(n) / (n - 1), index=list(genes))
    return Query(scores, up=genes[:k], down=genes[n - k :][::-1], name=name)


def query_from_sets(
    up: Sequence[str] | str | os.PathLike[str] = (),
    down: Sequence[str] | str | os.PathLike[str] = (),
    *,
    name: str = "query",
) -> Query:
    """A query from up and down gene sets: lists of genes or text files, one gene per line."""
    return Query(None, up=_gene_list(up, "up"), down=_gene_list(down, "down"), name=name)


def _gene_list(value: Sequence[str] | str | os.PathLike[str], key: str) -> tuple[str, ...]:
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if not path.is_file():
            raise ValueError(
                f"'{key}' must be a list of gene names or an existing file, not {str(value)!r} "
                f"(for one gene pass [{str(value)!r}])"
            )
        lines = path.read_text(encoding="utf-8").split()
        return _genes([g for g in lines if g], key)
    return _genes(value, key)


def read_query(
    path: str | os.PathLike[str], *, n_genes: int = N_GENES, name: str | None = None
) -> Query:
    """Read a query file, its kind told by its form.

    ``.gmt``: gene sets, the set whose name ends in ``up`` (case-insensitive) is ``up``, the one
    ending in ``down``/``dn`` is ``down``. A table (``.csv``, ``.tsv``, ``.txt`` with two
    columns, gene then score, header optional): gene scores (:func:`query_from_scores`). One
    column: genes ranked from most up to most down (:func:`query_from_ranks`).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"query file {str(p)!r} does not exist")
    label = name or p.name.split(".")[0]
    if p.suffix.lower() == ".gmt":
        return _read_gmt(p, label)
    sep = "," if p.suffix.lower() == ".csv" else "\t"
    table = pd.read_csv(p, sep=sep, header=None, dtype=str, comment="#")
    if table.shape[1] == 1:
        return query_from_ranks(table.iloc[:, 0].str.strip().tolist(), n_genes=n_genes, name=label)
    values = pd.to_numeric(table.iloc[:, 1], errors="coerce")
    if np.isnan(values.iloc[0]):  # a header row
        table, values = table.iloc[1:], values.iloc[1:]
    if values.isna().any():
        bad = table.iloc[:, 1][values.isna()].tolist()[:3]
        raise ValueError(f"query file {p.name}: column 2 must hold numeric scores (got {bad})")
    scores = pd.Series(values.to_numpy(), index=table.iloc[:, 0].str.strip().to_numpy())
    return query_from_scores(scores, n_genes=n_genes, name=label)


def _read_gmt(path: Path, name: str) -> Query:
    sets: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = [x for x in line.split("\t") if x]
        if len(parts) >= 2:
            sets[parts[0].lower()] = parts[2:]
    up = [g for k, v in sets.items() if k.endswith("up") for g in v]
    down = [g for k, v in sets.items() if k.endswith(("down", "dn")) for g in v]
    if not up and not down:
        raise ValueError(
            f"query file {path.name}: no gene set named '...up' or '...down' (sets: "
            f"{sorted(sets)[:5]}); name the two sets e.g. 'query_up' and 'query_down'"
        )
    return Query(None, up=tuple(up), down=tuple(down), name=name)


def query_from_groups(
    adata: AnnData,
    *,
    key: str,
    group: str,
    reference: str,
    fdr: float = 0.05,
    n_genes: int = N_GENES,
    layer: str | None = None,
) -> Query:
    """A query from two groups of cells: ``group`` against ``reference`` in ``obs[key]``.

    Scores are log2 fold changes (pdex's, on log1p data; a gene at zero on one side gets the
    largest finite fold change of its sign); ``up``/``down`` are the genes with Wilcoxon
    rank-sum (:func:`celltwin.eval.rank_sum_test`) BH FDR below ``fdr``, the ``n_genes`` largest
    fold changes of each sign.
    """
    if key not in adata.obs.columns:
        raise KeyError(f"obs has no column {key!r}; columns: {list(adata.obs.columns)[:10]}")
    labels = adata.obs[key].astype(str).to_numpy()
    for which, value in (("group", group), ("reference", reference)):
        if not (labels == value).any():
            present = sorted(set(labels))[:10]
            raise ValueError(f"'{which}'={value!r} is not a value of obs[{key!r}] ({present})")
    if not 0 < fdr <= 1:
        raise ValueError(f"'fdr' must be in (0, 1] (got {fdr})")
    keep = np.isin(labels, [group, reference])
    x = adata.layers[layer] if layer is not None else adata.X
    res = rank_sum_test(x[keep], labels[keep], control=reference)
    lfc = res.log2_fold_change[0].copy()
    finite = np.isfinite(lfc)
    big = float(np.abs(lfc[finite]).max()) if finite.any() else 1.0
    lfc[np.isposinf(lfc)], lfc[np.isneginf(lfc)], lfc[np.isnan(lfc)] = big, -big, 0.0
    scores = pd.Series(lfc, index=adata.var_names.astype(str))
    significant = scores[res.fdr[0] < fdr]
    up, down = _top_sets(significant, n_genes)
    return Query(scores, up=tuple(up), down=tuple(down), name=f"{group} vs {reference}")
