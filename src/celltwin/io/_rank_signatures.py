"""Ranked perturbation signatures: a tidy table of gene rankings per (context, perturbation).

File layout (one context per file, gzip-compressed or plain JSON)::

    {perturbation_name: {"up_full": [gene, ...], "up": [gene, ...]}}

``up_full`` ranks genes from most up-regulated downwards; ``up`` lists the significant ones.
Two kinds of ranking exist in the wild, and scores must treat them differently:

``"full"``
    Every tested gene is ranked, from most up to most down (NeurIPS 2023, sci-Plex3). A gene
    missing from a list was not tested for that perturbation.
``"top"``
    Only the ``k`` most up-regulated genes are listed (Replogle 2022 top-1000 up); every other
    gene is tied below the list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION, UNS_KEY

Ranking = Literal["full", "top"]
RANKINGS: tuple[str, ...] = ("full", "top")

#: Columns of :attr:`RankSignatures.table`, in order.
COLUMNS: tuple[str, ...] = (CONTEXT, PERTURBATION, "ranking", "up_full", "up")


# --- score transforms -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreTransform:
    """How one ranked list becomes per-gene scores.

    ``func(up_full, up, ranking)`` returns ``(genes, scores, other)``: the genes it scores, their
    scores, and the score of every other gene.
    """

    name: str
    description: str
    func: Callable[
        [tuple[str, ...], tuple[str, ...], str], tuple[tuple[str, ...], np.ndarray, float]
    ]


def _linear_rank(
    up_full: tuple[str, ...], up: tuple[str, ...], ranking: str
) -> tuple[tuple[str, ...], np.ndarray, float]:
    n = len(up_full)
    r = np.arange(n, dtype=np.float64)
    if ranking == "full":
        # Centred: rank 0 -> +1, the middle -> 0, the last (most down) -> -1.
        scores = 1.0 - 2.0 * r / (n - 1) if n > 1 else np.zeros(n)
    else:
        # Top-k: rank 0 -> 1, rank k-1 -> 1/k; everything below the list shares 0.
        scores = (n - r) / n
    return up_full, scores, 0.0


def _significant_up(
    up_full: tuple[str, ...], up: tuple[str, ...], ranking: str
) -> tuple[tuple[str, ...], np.ndarray, float]:
    # Replogle's 'up' holds a few genes outside its top-1000 'up_full': they count too.
    return up, np.ones(len(up)), 0.0


#: Transforms accepted by :meth:`RankSignatures.to_scores`.
TRANSFORMS: dict[str, ScoreTransform] = {
    t.name: t
    for t in (
        ScoreTransform(
            "linear_rank",
            "full ranking of n genes: 1 - 2 r / (n - 1) in [-1, 1] (rank r from 0), genes not "
            "ranked 0; top-k list: (k - r) / k in (0, 1], genes not listed 0",
            _linear_rank,
        ),
        ScoreTransform(
            "significant_up",
            "1 for genes in the significant 'up' list, 0 otherwise",
            _significant_up,
        ),
    )
}


# --- the container ----------------------------------------------------------------------------


def _gene_tuple(genes: object, key: str) -> tuple[str, ...]:
    """``genes`` as a tuple of strings, or a ValueError naming ``key``."""
    if isinstance(genes, str) or not isinstance(genes, Sequence | np.ndarray):
        raise ValueError(f"'{key}' must be a list of gene names (got {type(genes).__name__})")
    out = tuple(genes)
    if set(map(type, out)) - {str}:
        raise ValueError(f"'{key}' must hold gene names as strings (got {out[:3]}...)")
    return out


class RankSignatures:
    """Ranked gene signatures, one row per (context, perturbation).

    Parameters
    ----------
    table
        Columns ``context``, ``perturbation``, ``ranking`` (``"full"`` or ``"top"``), ``up_full``
        (sequence of genes, most up first) and ``up`` (the significant genes). Pairs of
        (context, perturbation) must be unique.

    Examples
    --------
    >>> sigs = RankSignatures.from_mapping(
    ...     {"KO1": {"up_full": ["A", "B", "C"], "up": ["A"]}}, context="K562", ranking="full"
    ... )
    >>> sigs.to_scores().X.tolist()
    [[1.0, 0.0, -1.0]]
    """

    def __init__(self, table: pd.DataFrame) -> None:
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"signature table lacks columns {missing}; it needs {list(COLUMNS)}")
        table = table.loc[:, list(COLUMNS)].reset_index(drop=True)
        bad = sorted(set(table["ranking"]) - set(RANKINGS))
        if bad:
            raise ValueError(f"'ranking' must be one of {RANKINGS} (got {bad})")
        dup = table.duplicated([CONTEXT, PERTURBATION])
        if dup.any():
            first = table.loc[dup, [CONTEXT, PERTURBATION]].iloc[0].tolist()
            raise ValueError(
                f"(context, perturbation) pairs must be unique; {tuple(first)} appears more "
                "than once (give each file its own context)"
            )
        table[CONTEXT] = table[CONTEXT].astype(str)
        table[PERTURBATION] = table[PERTURBATION].astype(str)
        for col in ("up_full", "up"):
            values = table[col].tolist()
            if not all(type(g) is tuple for g in values):
                table[col] = [_gene_tuple(g, col) for g in values]
        self._table = table

    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping[str, Mapping[str, Sequence[str]]],
        *,
        context: str,
        ranking: Ranking,
    ) -> RankSignatures:
        """Build from the JSON layout ``{perturbation: {"up_full": [...], "up": [...]}}``."""
        rows = []
        for pert, entry in mapping.items():
            if not isinstance(entry, Mapping) or "up_full" not in entry or "up" not in entry:
                raise ValueError(
                    f"signature {pert!r} in context {context!r} must be an object with keys "
                    f"'up_full' and 'up' (got {type(entry).__name__}"
                    f"{' with keys ' + str(sorted(entry)) if isinstance(entry, Mapping) else ''})"
                )
            try:
                full, up = _gene_tuple(entry["up_full"], "up_full"), _gene_tuple(entry["up"], "up")
            except ValueError as err:
                raise ValueError(f"signature {pert!r} in context {context!r}: {err}") from None
            rows.append((context, pert, ranking, full, up))
        return cls(pd.DataFrame(rows, columns=list(COLUMNS)))

    # -- views --------------------------------------------------------------------------------

    @property
    def table(self) -> pd.DataFrame:
        """A copy of the tidy table (one row per signature)."""
        return self._table.copy()

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        ctx = ", ".join(self.contexts)
        return f"RankSignatures({len(self)} signatures; contexts: {ctx})"

    @property
    def contexts(self) -> list[str]:
        """Contexts in order of first appearance."""
        return list(pd.unique(self._table[CONTEXT]))

    @property
    def perturbations(self) -> list[str]:
        """Perturbations in order of first appearance (over all contexts)."""
        return list(pd.unique(self._table[PERTURBATION]))

    def genes(self) -> pd.Index:
        """Sorted union of all genes named in ``up_full`` or ``up``."""
        genes: set[str] = set()
        for full, up in zip(self._table["up_full"], self._table["up"], strict=True):
            genes.update(full)
            genes.update(up)
        return pd.Index(sorted(genes), dtype=object)

    def subset(
        self,
        *,
        contexts: Sequence[str] | None = None,
        perturbations: Sequence[str] | None = None,
    ) -> RankSignatures:
        """Signatures whose context and perturbation are in the given lists (``None``: all)."""
        keep = np.ones(len(self), dtype=bool)
        if contexts is not None:
            keep &= self._table[CONTEXT].isin(list(contexts)).to_numpy()
        if perturbations is not None:
            keep &= self._table[PERTURBATION].isin(list(perturbations)).to_numpy()
        return RankSignatures(self._table.loc[keep])

    def to_mapping(self, context: str) -> dict[str, dict[str, list[str]]]:
        """The JSON layout of one context."""
        rows = self._table[self._table[CONTEXT] == context]
        if rows.empty:
            raise KeyError(f"no signatures for context {context!r}; contexts: {self.contexts}")
        return {
            p: {"up_full": list(full), "up": list(up)}
            for p, full, up in zip(rows[PERTURBATION], rows["up_full"], rows["up"], strict=True)
        }

    # -- scores -------------------------------------------------------------------------------

    def to_scores(
        self,
        *,
        genes: Sequence[str] | None = None,
        transform: str = "linear_rank",
    ) -> AnnData:
        """Turn the rankings into a signatures x genes score matrix.

        Parameters
        ----------
        genes
            Genes (columns) to score, in this order; default: :meth:`genes`. Genes never ranked get the transform's score for absent genes.
        transform
            A name in :data:`TRANSFORMS`:

            ``"linear_rank"``
                For a **full** ranking of ``n`` genes, gene at rank ``r`` (0 = most up) scores
                ``1 - 2 r / (n - 1)``: +1 for the most up, 0 in the middle, -1 for the most
                down; genes not in the ranking (not tested) score 0. For a **top-k** list, the
                gene at rank ``r`` scores ``(k - r) / k`` (1 down to ``1/k``) and genes not
                listed, tied below the list, score 0. Both put "no evidence of change" at 0.
            ``"significant_up"``
                1 for genes in the significant ``up`` list, 0 otherwise.

        Returns
        -------
        AnnData
            ``obs``: ``context``, ``perturbation``, ``ranking``; ``var_names``: genes; ``X``:
            float32 scores. The transform is recorded in ``uns['celltwin']['signature_scores']``.
        """
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r}; choose one of {sorted(TRANSFORMS)}")
        func = TRANSFORMS[transform].func
        var = self.genes() if genes is None else pd.Index(list(genes), dtype=object)
        if not var.is_unique:
            raise ValueError("'genes' must not contain duplicates")
        x = np.zeros((len(self), len(var)), dtype=np.float32)
        for i, (ranking, full, up) in enumerate(
            zip(self._table["ranking"], self._table["up_full"], self._table["up"], strict=True)
        ):
            scored, scores, other = func(full, up, ranking)
            if other != 0.0:
                x[i] = other
            idx = var.get_indexer(scored)
            found = idx >= 0
            x[i, idx[found]] = scores[found]
        obs = pd.DataFrame(
            {
                CONTEXT: pd.Categorical(self._table[CONTEXT]),
                PERTURBATION: self._table[PERTURBATION].to_numpy(),
                "ranking": pd.Categorical(self._table["ranking"]),
            },
            index=pd.Index(
                (self._table[CONTEXT] + "/" + self._table[PERTURBATION]).to_numpy(), dtype=object
            ),
        )
        out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=var))
        out.uns[UNS_KEY] = {
            "signature_scores": {
                "transform": transform,
                "description": TRANSFORMS[transform].description,
            }
        }
        return out


def concat_signatures(signatures: Sequence[RankSignatures]) -> RankSignatures:
    """Stack several :class:`RankSignatures` (pairs of context and perturbation must stay unique)."""
    if not signatures:
        raise ValueError("concat_signatures needs at least one RankSignatures")
    return RankSignatures(pd.concat([s._table for s in signatures], ignore_index=True))
