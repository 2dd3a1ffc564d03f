"""``papalexi2021-heldout-ko``: Papalexi et al. 2021, THP-1 CRISPR knockouts held out.

Five folds over the 25 knockouts (held-out perturbations, one context); all 299 genes; Virtual
Cell Challenge metrics. The embedding-based models get a prior-knowledge embedding of the
knockout targets (:func:`celltwin.priors.gene_embedding`).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from anndata import AnnData

from ..._keys import CONTROL, PERTURBATION
from ...data import load
from ...split import split_perturbations
from ._cell_task import (
    CellTask,
    Options,
    int_option,
    plus_registered,
    subsample,
    truthy,
)
from ._cells import register_cell_suite
from ._prior_features import prior_fit_kwargs


@cache
def _papalexi(smoke: bool) -> AnnData:
    adata = load("papalexi2021_subset", progress=False)
    for layer in list(adata.layers):
        del adata.layers[layer]
    adata.obsm.clear()
    if smoke:
        perts = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})[:10]
        adata = adata[adata.obs[PERTURBATION].astype(str).isin([CONTROL, *perts]).to_numpy()]
        adata = subsample(adata.copy(), per_group=40, keys=[PERTURBATION], seed=0)
    return adata


def _ko_chunks(adata: AnnData, opts: Options) -> dict[str, list[str]]:
    perts = np.array(sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL}), dtype=object)
    k = int_option(opts, "n_folds")
    if not 2 <= k <= perts.size:
        raise ValueError(f"option 'n_folds' must be in [2, {perts.size}] (got {k})")
    order = perts[np.random.default_rng(int_option(opts, "split_seed")).permutation(perts.size)]
    return {f"fold{i}": sorted(map(str, chunk)) for i, chunk in enumerate(np.array_split(order, k))}


def _papalexi_assign(adata: AnnData, fold: str, opts: Options) -> None:
    split_perturbations(adata, test=_ko_chunks(adata, opts)[fold], val=[], seed=0)


PAPALEXI = CellTask(
    name="papalexi2021-heldout-ko",
    load=lambda opts: _papalexi(truthy(opts["smoke"])),
    fold_names=lambda adata, opts: list(_ko_chunks(adata, opts)),
    assign=_papalexi_assign,
    unseen=frozenset({"perturbation"}),
    models=plus_registered(
        ("control", "mean", "linear", "nearest_perturbation"), unseen=None, extra=("transition",)
    ),
    metrics=("vcc_score", "mae", "des", "pds", "pearson_delta"),
    defaults={
        "smoke": False,
        "model_params": {},
        "n_top_genes": None,
        "n_folds": 5,
        "split_seed": 0,
        "prior": "go+string",
    },
    # DoRothEA's embedding takes seconds, GO + STRING's tens of seconds: the smoke run's prior.
    smoke={"n_folds": 2, "prior": "dorothea"},
    fit_kwargs=prior_fit_kwargs,
)


register_cell_suite(
    PAPALEXI,
    version="1",
    description="Papalexi 2021 THP-1: predict held-out CRISPR knockouts (5 folds over 25 "
    "targets); Virtual Cell Challenge metrics against the mean-of-training baseline.",
    data="papalexi2021_subset",
)
