"""``kang2018-heldout-celltype``: Kang et al. 2018 PBMCs, predict a held-out cell type's response.

Fold = a cell type: its IFN-beta-stimulated cells are held out and predicted from its control
cells, training on everything else (the scGen / CPA / CellFlow setting). 2,000 HVGs from the
training cells. Metrics of scGen's paper (R² of mean expression on all genes and on the top-100
DE genes) and of the field. Takes ``smoke=True`` (a tiny subset that runs in seconds, for tests),
``n_top_genes`` and the options of :data:`KANG`'s ``defaults``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pandas as pd
from anndata import AnnData

from ..._keys import CONTEXT, CONTROL, PERTURBATION
from ...data import load
from ...split import split_contexts
from .._features import N_TOP_GENES
from ._cell_task import CellTask, Options, int_option, plus_registered, subsample, truthy
from ._cells import register_cell_suite

_KANG_MIN_CELLS = 20


@cache
def _kang(dataset: str, smoke: bool, max_cells: int) -> AnnData:
    adata = load(dataset, progress=False)
    keep = adata.obs[PERTURBATION].astype(str).isin([CONTROL, _kang_stimulus(adata)])
    adata = adata[keep.to_numpy()].copy()
    for layer in list(adata.layers):  # models and metrics use X only
        del adata.layers[layer]
    if smoke or max_cells:
        adata = subsample(adata, per_group=max_cells or 60, keys=[CONTEXT, PERTURBATION], seed=0)
    return adata


#: The peers' training on Kang (the ``model_params`` option overrides any of it). One torch
#: thread each: these small networks train several times faster on one thread than on two busy
#: cores. State: the adapter's network (4 layers of width 128, sets of 64 cells, 8 sets a step)
#: for 400 steps, about 18 passes over the ~11,000 training cells and ~6 CPU minutes a fold
#: (800 steps on the CD4_T fold: top-20-DE PearsonΔ 0.951 vs 0.956, energy distance 0.352 vs
#: 0.359, for 1.6x the CPU time); scGen: its tutorial's recipe (the adapter's defaults: 100
#: epochs, early stopping with patience 25 on 10 % validation cells).
_KANG_PEERS: dict[str, dict[str, Any]] = {
    "state": {"max_steps": 400, "n_threads": 1},
    "scgen": {"n_threads": 1},
}
#: Tiny peers for smoke runs (seconds, not minutes).
_SMOKE_PEERS: dict[str, dict[str, Any]] = {
    "state": {
        "max_steps": 20,
        "hidden_dim": 32,
        "n_heads": 2,
        "n_layers": 1,
        "cell_set_len": 16,
        "batch_size": 4,
        "n_threads": 1,
    },
    "scgen": {"n_hidden": 64, "n_latent": 10, "max_epochs": 3, "n_threads": 1},
}


def _kang_stimulus(adata: AnnData) -> str:
    labels = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})
    if len(labels) != 1:
        raise ValueError(
            f"kang2018-heldout-celltype expects one stimulus besides {CONTROL!r} in "
            f"obs[{PERTURBATION!r}] (got {labels})"
        )
    return labels[0]


def _kang_load(opts: Options) -> AnnData:
    return _kang(str(opts["dataset"]), truthy(opts["smoke"]), int_option(opts, "max_cells"))


def _kang_folds(adata: AnnData, opts: Options) -> list[str]:
    counts = pd.crosstab(adata.obs[CONTEXT].astype(str), adata.obs[PERTURBATION].astype(str))
    ok = sorted(c for c in counts.index if (counts.loc[c] >= _KANG_MIN_CELLS).all())
    return ok[: int_option(opts, "max_folds")] if opts["max_folds"] else ok


def _kang_assign(adata: AnnData, fold: str, opts: Options) -> None:
    split_contexts(adata, test=fold, seed=0)


KANG = CellTask(
    name="kang2018-heldout-celltype",
    load=_kang_load,
    fold_names=_kang_folds,
    assign=_kang_assign,
    unseen=frozenset({"context"}),
    models=plus_registered(
        ("control", "mean", "context_shift", "linear"), unseen="context", extra=()
    ),
    metrics=(
        "pearson_delta_top20_de",
        "energy_distance",
        "des",
        "mae",
        "pearson_delta",
        "r2_mean_all",
        "r2_mean_top100_de",
    ),
    defaults={
        "smoke": False,
        "model_params": {},
        "n_top_genes": N_TOP_GENES,
        "dataset": "kang2018",
        "max_cells": 0,
        "max_folds": 0,
    },
    smoke={"n_top_genes": 300, "max_cells": 60, "max_folds": 2},
    model_defaults=_KANG_PEERS,
    smoke_model_defaults=_SMOKE_PEERS,
)


register_cell_suite(
    KANG,
    # 2: kang2018 v2 contexts (reference mapping to scGen's labels; 7 cell types).
    version="2",
    description="Kang 2018 PBMCs: predict each cell type's IFN-beta response from its control "
    "cells, trained on the other cell types (scGen setting); 2,000 HVGs from training cells.",
    data="kang2018",
)
