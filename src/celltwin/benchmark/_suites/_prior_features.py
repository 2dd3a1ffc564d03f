"""Prior-knowledge features of genetic targets for the embedding-based models of a cell suite."""

from __future__ import annotations

from functools import cache
from typing import Any

import pandas as pd

from ..._keys import CONTROL, PERTURBATION, split_combination
from ...models import MODELS
from ...priors import gene_embedding
from .._features import FoldData
from ._cell_task import EMBEDDING_MODELS, Options, accepts


@cache
def prior_embedding(source: str, genes: tuple[str, ...]) -> pd.DataFrame:
    """:func:`celltwin.priors.gene_embedding` of ``genes`` (cached per source and gene set)."""
    return gene_embedding(source, genes=list(genes))


def prior_fit_kwargs(model: str, fold: FoldData, opts: Options) -> dict[str, Any]:
    """Prior-knowledge embeddings of every genetic target for the embedding-based models.

    The embedding comes from prior knowledge (option ``prior``, e.g. GO and STRING), not the
    cells, so it may cover the held-out targets: that is how an unseen perturbation is predicted
    at all. Its rows are the targets of the training perturbations and of the held-out
    conditions, combinations split into their parts (a model composes a pair from its parts'
    rows). ``linear`` gets it too (its ``P``): its default ``G[target]`` exists only for targets
    among the measured genes, and the targets of these suites are not among them.
    """
    if model not in EMBEDDING_MODELS or model not in MODELS:
        return {}
    if not accepts(model, "perturbation_features"):
        return {}
    labels = set(fold.train.obs[PERTURBATION].astype(str)) | set(fold.conditions[PERTURBATION])
    targets = sorted({part for p in labels for part in split_combination(p)} - {CONTROL})
    return {"perturbation_features": prior_embedding(str(opts["prior"]), tuple(targets))}
