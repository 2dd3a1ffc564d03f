"""Leakage-safe folds: what a model may see, what it predicts from, what it is scored against.

A fold of a cell suite is built from data carrying a split (``obs['split']``, written by a
:mod:`celltwin.split` strategy) and is handed out in three disjoint roles (:class:`FoldData`):

``train``
    The cells a model may learn from: ``obs['split'] == "train"`` (every control cell, held-out
    contexts' included, and the training perturbed cells). Only these are passed to ``fit``.
``query``
    The control cells of the context(s) to predict (a subset of ``train``): what ``predict``
    starts from.
``truth``
    The held-out perturbed cells and their contexts' control cells: for scoring only, never
    passed to a model. The runner does not even write it where a model process can read it.

Everything computed across cells before a model sees the data is computed on ``train`` alone:
the highly variable genes (:func:`select_genes`) are chosen from the training cells and then
applied to all three roles. Per-cell normalisation (``X`` = log1p of counts per 10k) uses no
statistic of other cells, so it cannot leak; any gene-wise statistic a model needs (means,
scales, principal components) it computes itself in ``fit`` from ``train``.

:func:`poison_held_out` corrupts every held-out cell of a split; a fold built from poisoned
data must select the same genes and give the same predictions (tested for every suite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, UNS_KEY
from ..models import conditions_of
from ..split import held_out_mask

#: Default number of highly variable genes a cell suite keeps.
N_TOP_GENES = 2000


@dataclass(frozen=True)
class FoldData:
    """One fold of a cell suite, split by role (see the module docstring).

    Attributes
    ----------
    name
        Fold name.
    train
        Cells a model may see (``obs['split'] == "train"``), on :attr:`genes`.
    query
        Control cells of the contexts to predict, on :attr:`genes`.
    truth
        Held-out perturbed cells plus their contexts' control cells, on :attr:`genes`.
    conditions
        What to predict: :func:`celltwin.models.conditions_of` of the held-out cells
        (``context``, ``perturbation``, ``dose``, ``perturbation_type``, ``n_cells``).
    genes
        The genes every role is restricted to, selected from ``train`` only.
    """

    name: str
    train: AnnData
    query: AnnData
    truth: AnnData
    conditions: pd.DataFrame
    genes: list[str]


def select_genes(
    train: AnnData,
    *,
    n_top_genes: int | None = N_TOP_GENES,
    flavor: str = "seurat",
    include: Sequence[str] = (),
) -> list[str]:
    """Highly variable genes of the training cells, in the data's gene order.

    Parameters
    ----------
    train
        Training cells only (``X`` = log1p CP10k). Nothing else may be passed here: the
        selection is a statistic over cells.
    n_top_genes
        Genes to keep; ``None`` or at least the number of genes keeps every gene.
    flavor
        :func:`scanpy.pp.highly_variable_genes` flavour: ``"seurat"`` (log data in ``X``) or
        ``"cell_ranger"``.
    include
        Genes kept in addition to the highly variable ones when present (e.g. perturbation
        targets, whose knockdown is part of the response).

    Returns
    -------
    list of str
        Gene names in the order of ``train.var_names``.
    """
    import scanpy as sc

    if flavor not in ("seurat", "cell_ranger"):
        raise ValueError(
            f"'flavor' must be 'seurat' or 'cell_ranger' (log data in X) (got {flavor!r})"
        )
    names = train.var_names
    if n_top_genes is None or int(n_top_genes) >= train.n_vars:
        return list(map(str, names))
    if int(n_top_genes) < 1:
        raise ValueError(f"'n_top_genes' must be >= 1 or None (got {n_top_genes!r})")
    x = train.X
    x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, dtype=np.float32)
    table = sc.pp.highly_variable_genes(
        AnnData(X=x, var=pd.DataFrame(index=names.copy())),
        n_top_genes=int(n_top_genes),
        flavor=flavor,
        inplace=False,
    )
    keep = table["highly_variable"].to_numpy(dtype=bool) | names.isin(list(include))
    return [str(g) for g in names[keep]]


def _subset(adata: AnnData, rows: np.ndarray, genes: list[str]) -> AnnData:
    """A fresh AnnData of ``rows`` x ``genes``: X and obs only (no layers, no view)."""
    cols = adata.var_names.get_indexer(genes)
    x = adata.X[rows][:, cols]
    x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, dtype=np.float32)
    obs = adata.obs.iloc[rows].copy()
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            obs[column] = obs[column].cat.remove_unused_categories()
    uns = {}
    normalization = adata.uns.get(UNS_KEY, {}).get("normalization")
    if normalization is not None:
        uns[UNS_KEY] = {"normalization": dict(normalization)}
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(genes)), uns=uns)


def make_fold(
    adata: AnnData,
    *,
    name: str,
    split_key: str = SPLIT,
    n_top_genes: int | None = N_TOP_GENES,
    include: Sequence[str] = (),
) -> FoldData:
    """Cut data carrying a split into the three roles of a fold.

    Parameters
    ----------
    adata
        Canonical cells x genes with ``obs[split_key]`` (``train`` / ``val`` / ``test``).
        Validation cells are dropped (no suite tunes on them).
    name
        Fold name.
    split_key
        obs column of the split.
    n_top_genes, include
        Gene selection on the training cells (see :func:`select_genes`).

    Returns
    -------
    FoldData
    """
    try:
        is_truth = held_out_mask(adata, key=split_key, split=TEST)
    except ValueError as err:
        raise ValueError(f"fold {name!r}: {err}") from None
    is_query = is_truth & (adata.obs[PERTURBATION].astype(str).to_numpy() == CONTROL)

    train_rows = np.flatnonzero(adata.obs[split_key].astype(str).to_numpy() == TRAIN)
    # The selection reads the training rows and nothing else.
    genes = select_genes(
        _subset(adata, train_rows, list(map(str, adata.var_names))),
        n_top_genes=n_top_genes,
        include=include,
    )
    train = _subset(adata, train_rows, genes)
    query = _subset(adata, np.flatnonzero(is_query), genes)
    truth = _subset(adata, np.flatnonzero(is_truth), genes)
    for part in (query, truth):
        del part.obs[split_key]
    conditions = conditions_of(truth)
    return FoldData(
        name=name, train=train, query=query, truth=truth, conditions=conditions, genes=genes
    )


def poison_held_out(adata: AnnData, *, split_key: str = SPLIT, seed: int = 0) -> AnnData:
    """A copy of ``adata`` whose held-out cells (split ``val`` / ``test``) hold garbage.

    Their rows of ``X`` (and of every layer) are replaced by random values two to four times the
    data's maximum, so any statistic that reads them changes. Labels
    (obs) are kept: which conditions to predict is the question, not the answer.
    """
    out = adata.copy()
    held = np.flatnonzero(out.obs[split_key].astype(str).to_numpy() != TRAIN)
    rng = np.random.default_rng(seed)

    def garbage(matrix: np.ndarray | sp.spmatrix) -> np.ndarray | sp.spmatrix:
        if isinstance(matrix, sp.spmatrix | sp.sparray):  # sp.issparse, which mypy cannot narrow
            dense = matrix.toarray()
        else:
            dense = np.array(matrix, dtype=np.float64)
        # Two to four times the data's maximum: far outside the data, finite after expm1.
        top = max(float(np.max(dense)) if dense.size else 1.0, 1.0)
        noise = rng.uniform(2.0 * top, 4.0 * top, size=(held.size, dense.shape[1]))
        dense[held] = rng.permutation(noise.ravel()).reshape(noise.shape)
        return sp.csr_matrix(dense) if sp.issparse(matrix) else dense.astype(matrix.dtype)

    out.X = garbage(out.X)
    for layer in list(out.layers):
        out.layers[layer] = garbage(out.layers[layer])
    return out
