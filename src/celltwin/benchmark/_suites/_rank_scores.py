"""Signature scores and the rank metrics of the signature suites.

Scores use :meth:`celltwin.io.RankSignatures.to_scores` with ``transform="linear_rank"`` in every
suite: a full ranking of ``n`` genes scores ``1 - 2 r / (n - 1)`` (+1 most up, -1 most down), a
top-k list ``(k - r) / k``; the transform is per signature, so no held-out row shapes it. Genes a
*full* ranking did not test are ``NaN`` (not measured) in the models' input; genes below a top-k
list score 0 (tied below the list).

Metrics (per held-out pair, columns of :data:`celltwin.benchmark.RESULT_COLUMNS`)
--------------------------------------------------------------------------------------
Predictions are scored on the genes of the whole data set; genes outside the training universe
get the neutral score 0.

``spearman``
    Spearman correlation of predicted and true scores. Full rankings: over the genes the truth
    ranks. Top-k truth (Replogle): over the listed genes only (the order within the true top
    list; the genes tied below it carry no order).
``top50_up``, ``top100_up``
    Share of the true top-k up genes in the predicted top-k (over all genes of the data set).
``top50_down``, ``top100_down``
    The same for the most down genes; full rankings only (a top-k list has no down genes).
``auroc_top100_up``
    AUROC of the predicted scores for recovering the true top-100 up genes among all genes.

The primary metric is ``spearman`` for full rankings (NeurIPS 2023, sci-Plex3). For Replogle's
top-1000-up lists it is ``top100_up``: the truth defines which genes go up most, not an order of
all genes, and Spearman on the listed genes ignores whether a model puts them on top at all.

"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import CONTEXT, PERTURBATION
from ...eval import spearman, topk_auroc, topk_overlap
from ...io import RankSignatures
from ._registry import RESULT_COLUMNS

#: Score transform of every signature suite (see :meth:`celltwin.io.RankSignatures.to_scores`).
TRANSFORM = "linear_rank"


def _ranked_mask(sigs: RankSignatures, genes: pd.Index) -> np.ndarray:
    """``(signatures, genes)``: True where the signature's ``up_full`` ranks the gene."""
    lists = sigs.table["up_full"].tolist()
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(chain.from_iterable(lists), dtype=object, count=int(lengths.sum()))
    cols = genes.get_indexer(flat)  # one hashed lookup for all lists
    rows = np.repeat(np.arange(len(lists)), lengths)
    mask = np.zeros((len(lists), len(genes)), dtype=bool)
    mask[rows[cols >= 0], cols[cols >= 0]] = True
    return mask


def signature_scores(sigs: RankSignatures, *, genes: Sequence[str] | None = None) -> AnnData:
    """Scores for the models: ``linear_rank``, with ``NaN`` for genes a full ranking did not test.

    Genes below a top-k list keep 0 (they are tied below the list, not unmeasured).

    Parameters
    ----------
    sigs
        The signatures to score.
    genes
        Columns; default: every gene the signatures name.
    """
    scores = sigs.to_scores(genes=genes, transform=TRANSFORM)
    full = (scores.obs["ranking"].astype(str) == "full").to_numpy()
    if full.any():
        x = np.array(scores.X, dtype=np.float32)
        x[full[:, None] & ~_ranked_mask(sigs, scores.var_names)] = np.nan
        scores.X = x
    return scores


@dataclass(frozen=True)
class _Scored:
    """Every signature of a data set scored once on all its genes (sliced per fold).

    ``values``: :func:`signature_scores` (NaN where a full ranking does not rank a gene, 0 below
    a top-k list); ``ranked``: where ``up_full`` ranks the gene; ``full``: full-ranking rows.
    The transform is per signature, so a row's scores never depend on other rows.
    """

    genes: pd.Index
    values: np.ndarray
    ranked: np.ndarray
    full: np.ndarray
    obs: pd.DataFrame
    row_of: dict[tuple[str, str], int]

    @classmethod
    def of(cls, sigs: RankSignatures) -> _Scored:
        genes = sigs.genes()
        scores = sigs.to_scores(genes=genes, transform=TRANSFORM)
        ranked = _ranked_mask(sigs, genes)
        full = (scores.obs["ranking"].astype(str) == "full").to_numpy()
        values = np.asarray(scores.X, dtype=np.float32)
        values[full[:, None] & ~ranked] = np.nan
        obs = scores.obs.loc[:, [CONTEXT, PERTURBATION]].astype(str)
        keys = zip(obs[CONTEXT], obs[PERTURBATION], strict=True)
        return cls(genes, values, ranked, full, obs, {k: i for i, k in enumerate(keys)})

    def rows(self, pairs: pd.DataFrame) -> np.ndarray:
        """Row of each (context, perturbation) of ``pairs``."""
        keys = zip(pairs[CONTEXT], pairs[PERTURBATION], strict=True)
        return np.array([self.row_of[k] for k in keys], dtype=np.int64)


@dataclass(frozen=True)
class _Truth:
    """True scores of the held-out pairs on the evaluation genes.

    ``values``: full rankings NaN where not tested, top-k lists 0 below the list (used by the
    top-k and AUROC metrics); ``ranked``: NaN wherever the signature does not rank the gene (used
    by Spearman); ``full``: which rows are full rankings.
    """

    values: np.ndarray
    ranked: np.ndarray
    full: np.ndarray

    @classmethod
    def of(cls, scored: _Scored, rows: np.ndarray) -> _Truth:
        values = scored.values[rows].astype(np.float64)
        ranked = np.where(scored.ranked[rows], values, np.nan)
        return cls(values=values, ranked=ranked, full=scored.full[rows])

    def __getitem__(self, rows: np.ndarray) -> _Truth:
        return _Truth(self.values[rows], self.ranked[rows], self.full[rows])


@dataclass(frozen=True)
class RankMetric:
    """A rank metric of the signature suites: name, function and whether it needs full rankings."""

    name: str
    func: Callable[[np.ndarray, _Truth], np.ndarray]
    full_only: bool = False


#: Metrics every signature suite reports (in this order).
RANK_METRICS: tuple[RankMetric, ...] = (
    RankMetric("spearman", lambda p, t: spearman(p, t.ranked)),
    RankMetric("top50_up", lambda p, t: topk_overlap(p, t.values, k=50, direction="up")),
    RankMetric("top100_up", lambda p, t: topk_overlap(p, t.values, k=100, direction="up")),
    RankMetric("top50_down", lambda p, t: topk_overlap(p, t.values, k=50, direction="down"), True),
    RankMetric(
        "top100_down", lambda p, t: topk_overlap(p, t.values, k=100, direction="down"), True
    ),
    RankMetric("auroc_top100_up", lambda p, t: topk_auroc(p, t.values, k=100, direction="up")),
)


def score_predictions(
    pred: np.ndarray, truth: _Truth, *, pairs: pd.DataFrame, fold: str, model: str
) -> pd.DataFrame:
    """Long results (:data:`RESULT_COLUMNS`) of predicted score rows against the truth."""
    frames = []
    for metric in RANK_METRICS:
        rows = truth.full if metric.full_only else np.ones(len(pairs), dtype=bool)
        if not rows.any():
            continue
        value = metric.func(pred[rows], truth[rows])
        frames.append(
            pd.DataFrame(
                {
                    "fold": fold,
                    "model": model,
                    CONTEXT: pairs[CONTEXT].to_numpy()[rows],
                    PERTURBATION: pairs[PERTURBATION].to_numpy()[rows],
                    "metric": metric.name,
                    "value": value.astype(np.float64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).loc[:, list(RESULT_COLUMNS)]
