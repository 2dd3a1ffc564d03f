"""Norman et al. 2019, K562 CRISPRa singles and pairs (perturbench's subset).

``norman2019-combinations``
    GEARS splits (:func:`celltwin.split.split_combinations`), one seed per fold: some singles
    held out with every pair touching them, pairs graded by how many of their singles training
    has seen (``combo_seen0/1/2``; ``unseen_single`` for the held-out singles). Adds the
    interaction scores of :func:`norman_interaction_scores`.
``norman2019-unseen-single``
    Held-out single activations (five folds over the 18 singles), predicted from prior
    knowledge; the pairs touching a held-out single are held out with it (nothing about it
    reaches training) and are scored too (categories ``combo_seen0/1``).

The targets are not among the 500 measured genes, so an unseen target is predicted from its
prior-knowledge features only (option ``prior``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import CONTEXT, CONTROL, PERTURBATION, split_combination
from ...data import load
from ...eval import interaction_class, interaction_fit, interaction_pearson
from ...split import split_combinations
from .._features import FoldData
from ._cell_task import CellTask, Options, int_option, plus_registered, subsample, truthy
from ._cells import register_cell_suite
from ._prior_features import prior_fit_kwargs
from ._simulated import INTERACTION_METRIC, _group_means

#: Columns of :func:`norman_gi_table`.
GI_COLUMNS = ("model", CONTEXT, "pair", "c1", "c2", "magnitude", "model_fit", "dcor", "gi_class")


@cache
def _norman(smoke: bool) -> AnnData:
    adata = load("norman2019_subset", progress=False)
    for layer in list(adata.layers):
        del adata.layers[layer]
    adata.uns.pop("gi_labels", None)
    if smoke:
        adata = subsample(adata, per_group=30, keys=[PERTURBATION], seed=0)
    return adata


def _seed_folds(adata: AnnData, opts: Options) -> list[str]:
    return [f"split{i}" for i in range(int_option(opts, "n_folds"))]


def _combo_assign(adata: AnnData, fold: str, opts: Options) -> None:
    split_combinations(
        adata,
        test_single_fraction=0.2,
        test_seen2_fraction=0.4,
        val_fraction=0.0,
        seed=int(fold.removeprefix("split")),
    )


def _singles(adata: AnnData) -> list[str]:
    perts = set(adata.obs[PERTURBATION].astype(str)) - {CONTROL}
    return sorted(p for p in perts if len(split_combination(p)) == 1)


def _single_chunks(adata: AnnData, opts: Options) -> dict[str, list[str]]:
    singles = np.array(_singles(adata), dtype=object)
    k = int_option(opts, "n_folds")
    if not 2 <= k <= singles.size:
        raise ValueError(f"option 'n_folds' must be in [2, {singles.size}] (got {k})")
    order = singles[np.random.default_rng(int_option(opts, "split_seed")).permutation(singles.size)]
    return {f"fold{i}": sorted(map(str, c)) for i, c in enumerate(np.array_split(order, k))}


def _single_assign(adata: AnnData, fold: str, opts: Options) -> None:
    split_combinations(
        adata, test_singles=_single_chunks(adata, opts)[fold], test_seen2_fraction=0.0
    )


# --- interaction measures ----------------------------------------------------------------------


def _fit_row(model: str, key: tuple[str, str], singles: list, double: np.ndarray) -> tuple:
    fit = interaction_fit(double, np.vstack(singles))
    measures = fit[["c1", "c2", "magnitude", "model_fit", "dcor"]].tolist()
    return (model, *key, *measures, interaction_class(fit))


class _Effects:
    """Effects on one fold: mean cells minus the mean of the context's control cells.

    Training conditions against the training controls (as a model sees them: the ``additive``
    model's prediction of a seen pair is then exactly the sum of its singles); held-out and
    predicted conditions against the query controls (the cells a model predicts from).
    """

    def __init__(self, fold: FoldData) -> None:
        self.genes = list(fold.genes)
        self.control = self._means(fold.query, [CONTEXT])
        trained_control = self._means(
            fold.train[fold.train.obs[PERTURBATION] == CONTROL], [CONTEXT]
        )
        self.trained = self.of(fold.train, control=trained_control)
        self.truth = self.of(fold.truth)

    def _means(self, adata: AnnData, keys: list[str]) -> dict:
        sub = adata[:, adata.var_names.get_indexer(self.genes)]
        means = _group_means(sub, keys)
        return {k[0]: v for k, v in means.items()} if len(keys) == 1 else means

    def of(
        self, adata: AnnData, *, control: dict[str, np.ndarray] | None = None
    ) -> dict[tuple[str, str], np.ndarray]:
        control = self.control if control is None else control
        return {
            (c, p): mean - control[c]
            for (c, p), mean in self._means(adata, [CONTEXT, PERTURBATION]).items()
            if c in control and p != CONTROL
        }


def _pairs(effects: dict[tuple[str, str], np.ndarray]) -> list[tuple[str, str]]:
    return [k for k in effects if len(split_combination(k[1])) == 2]


def norman_gi_table(fold: FoldData, predictions: Mapping[str, AnnData]) -> pd.DataFrame:
    """The fit of each held-out pair on its singles, observed and as each model predicts it.

    Only pairs whose two singles are measured (in training or held out) are fitted. Effects
    are mean expression minus the mean of the context's control cells (training cells: the
    training controls; held-out and predicted ones: the query controls), over the fold's genes. Model ``observed``: the held-out pair's cells on its singles' measured cells. A
    model's row: its predicted pair on its own singles, the training cells for a trained
    single and its prediction for a held-out one (no row when it predicted neither).

    Returns
    -------
    pandas.DataFrame
        :data:`GI_COLUMNS`: the fit's coefficients, magnitude, model fit, distance correlation
        and GEARS class (:func:`celltwin.eval.interaction_class`).
    """
    eff = _Effects(fold)
    observed = {**eff.truth, **eff.trained}
    predicted = {model: eff.of(pred) for model, pred in predictions.items()}
    rows = []
    for key in _pairs(eff.truth):
        parts = [(key[0], p) for p in split_combination(key[1])]
        if not all(p in observed for p in parts):
            continue
        rows.append(_fit_row("observed", key, [observed[p] for p in parts], eff.truth[key]))
        for model, pred in predicted.items():
            singles = [eff.trained.get(p, pred.get(p)) for p in parts]
            if key in pred and all(s is not None for s in singles):
                rows.append(_fit_row(model, key, singles, pred[key]))
    return pd.DataFrame(rows, columns=list(GI_COLUMNS))


def norman_interaction_scores(
    fold: FoldData, predictions: Mapping[str, AnnData], _truth: object
) -> pd.DataFrame:
    """Interaction recovery of each held-out pair whose singles are both in training.

    ``interaction_pearson``: the predicted interaction (predicted pair minus the sum of its
    singles' training cells) against the observed one (observed pair minus the same sum),
    partial Pearson r given that sum (:func:`celltwin.eval.interaction_pearson`; ``additive``
    scores 0), on pairs whose singles are both trained (``combo_seen2``). Norman's fit of the
    pairs (magnitude, class) is :func:`norman_gi_table`, compared over folds by
    ``benchmarks/norman_gi.py``.
    """
    eff = _Effects(fold)
    rows = []
    for model, pred in predictions.items():
        predicted = eff.of(pred)
        for key in _pairs(eff.truth):
            parts = [(key[0], p) for p in split_combination(key[1])]
            if key not in predicted or not all(p in eff.trained for p in parts):
                continue
            add = np.sum([eff.trained[p] for p in parts], axis=0)
            r = interaction_pearson(predicted[key] - add, eff.truth[key] - add, additive=add)
            rows.append((model, *key, INTERACTION_METRIC, float(r[0])))
    return pd.DataFrame(rows, columns=["model", CONTEXT, PERTURBATION, "metric", "value"])


_DEFAULTS = {
    "smoke": False,
    "model_params": {},
    "n_top_genes": None,
    "n_folds": 5,
    "prior": "go+string",
}
_MODELS = ("control", "mean", "additive", "linear", "nearest_perturbation")

COMBINATIONS = CellTask(
    name="norman2019-combinations",
    load=lambda opts: _norman(truthy(opts["smoke"])),
    fold_names=_seed_folds,
    assign=_combo_assign,
    unseen=frozenset({"perturbation", "combination"}),
    models=plus_registered(_MODELS, unseen=None, extra=("transition",)),
    metrics=(
        "pearson_delta",
        INTERACTION_METRIC,
        "pearson_delta_top20_de",
        "mae",
        "energy_distance",
    ),
    defaults=dict(_DEFAULTS),
    smoke={"n_folds": 2, "prior": "go"},
    fit_kwargs=prior_fit_kwargs,
    # The truth is the observed cells of the fold: no extra truth, but the runner calls
    # extra_scores only when truth_extra is set.
    truth_extra=lambda opts: None,
    extra_scores=norman_interaction_scores,
)

UNSEEN_SINGLE = CellTask(
    name="norman2019-unseen-single",
    load=lambda opts: _norman(truthy(opts["smoke"])),
    fold_names=lambda adata, opts: list(_single_chunks(adata, opts)),
    assign=_single_assign,
    unseen=frozenset({"perturbation"}),
    models=plus_registered(_MODELS, unseen=None, extra=("transition",)),
    metrics=("pearson_delta", "pearson_delta_top20_de", "mae", "des", "pds"),
    defaults={**_DEFAULTS, "split_seed": 0},
    smoke={"n_folds": 2, "prior": "go"},
    fit_kwargs=prior_fit_kwargs,
)

register_cell_suite(
    COMBINATIONS,
    version="1",
    description="Norman 2019 K562 CRISPRa: held-out pairs by how many of their singles were "
    "seen (GEARS splits, 5 seeds); interaction recovery against the observed pairs.",
    data="norman2019_subset",
)
register_cell_suite(
    UNSEEN_SINGLE,
    version="1",
    description="Norman 2019 K562 CRISPRa: held-out single activations (5 folds over 18), "
    "predicted from GO + STRING priors; pairs touching them held out too.",
    data="norman2019_subset",
)
