"""McFaline-Figueroa et al. 2023, CRISPRi in three glioblastoma lines (perturbench's subset).

``mcfaline2023-heldout-line``
    Predict a line's nine knockdowns from the other two lines (:func:`celltwin.split.split_contexts`),
    one fold per line, zero-shot, and again with ``few_shot`` of the line's own knockdowns in
    training (folds ``<line>+<k>shot``; those knockdowns are not scored).
``mcfaline2023-unseen-knockdown``
    Knockdowns never measured in any line (:func:`celltwin.split.split_perturbations`), three
    folds of three, predicted in every line from prior knowledge (option ``prior``).

The targets are not among the 500 measured genes.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from anndata import AnnData

from ..._keys import CONTEXT, CONTROL, PERTURBATION
from ...data import load
from ...split import split_contexts, split_perturbations
from ._cell_task import CellTask, Options, int_option, plus_registered, subsample, truthy
from ._cells import register_cell_suite
from ._prior_features import prior_fit_kwargs


@cache
def _mcfaline(smoke: bool) -> AnnData:
    adata = load("mcfaline2023_subset", progress=False)
    for layer in list(adata.layers):
        del adata.layers[layer]
    if smoke:
        adata = subsample(adata, per_group=25, keys=[CONTEXT, PERTURBATION], seed=0)
    return adata


def _lines(adata: AnnData) -> list[str]:
    return sorted(set(adata.obs[CONTEXT].astype(str)))


def _line_folds(adata: AnnData, opts: Options) -> list[str]:
    k = int_option(opts, "few_shot")
    lines = _lines(adata)
    return lines + ([f"{line}+{k}shot" for line in lines] if k > 0 else [])


def _line_assign(adata: AnnData, fold: str, opts: Options) -> None:
    line, _, shots = fold.partition("+")
    few = int_option(opts, "few_shot") if shots else 0
    split_contexts(adata, test=line, few_shot=few, seed=int_option(opts, "split_seed"))


def _knockdown_chunks(adata: AnnData, opts: Options) -> dict[str, list[str]]:
    perts = np.array(sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL}), dtype=object)
    k = int_option(opts, "n_folds")
    if not 2 <= k <= perts.size:
        raise ValueError(f"option 'n_folds' must be in [2, {perts.size}] (got {k})")
    order = perts[np.random.default_rng(int_option(opts, "split_seed")).permutation(perts.size)]
    return {f"fold{i}": sorted(map(str, c)) for i, c in enumerate(np.array_split(order, k))}


def _knockdown_assign(adata: AnnData, fold: str, opts: Options) -> None:
    split_perturbations(adata, test=_knockdown_chunks(adata, opts)[fold], val=[], seed=0)


_DEFAULTS = {"smoke": False, "model_params": {}, "n_top_genes": None, "split_seed": 0}

HELDOUT_LINE = CellTask(
    name="mcfaline2023-heldout-line",
    load=lambda opts: _mcfaline(truthy(opts["smoke"])),
    fold_names=_line_folds,
    assign=_line_assign,
    unseen=frozenset({"context"}),
    models=plus_registered(
        ("control", "mean", "context_shift"), unseen="context", extra=("transition",)
    ),
    metrics=("pearson_delta_top20_de", "energy_distance", "pearson_delta", "mae"),
    defaults={**_DEFAULTS, "few_shot": 3},
    smoke={"few_shot": 2},
)

UNSEEN_KNOCKDOWN = CellTask(
    name="mcfaline2023-unseen-knockdown",
    load=lambda opts: _mcfaline(truthy(opts["smoke"])),
    fold_names=lambda adata, opts: list(_knockdown_chunks(adata, opts)),
    assign=_knockdown_assign,
    unseen=frozenset({"perturbation"}),
    models=plus_registered(
        ("control", "mean", "linear", "nearest_perturbation"), unseen=None, extra=("transition",)
    ),
    metrics=("pearson_delta", "pearson_delta_top20_de", "mae", "energy_distance"),
    defaults={**_DEFAULTS, "n_folds": 3, "prior": "go+string"},
    smoke={"prior": "go"},
    fit_kwargs=prior_fit_kwargs,
)

register_cell_suite(
    HELDOUT_LINE,
    version="1",
    description="McFaline-Figueroa 2023 glioblastoma CRISPRi: predict a line's 9 knockdowns "
    "from the other two lines, zero-shot and with 3 of its own knockdowns (few-shot).",
    data="mcfaline2023_subset",
)
register_cell_suite(
    UNSEEN_KNOCKDOWN,
    version="1",
    description="McFaline-Figueroa 2023 glioblastoma CRISPRi: knockdowns never measured in any "
    "line (3 folds of 3), predicted in all three lines from GO + STRING priors.",
    data="mcfaline2023_subset",
)
