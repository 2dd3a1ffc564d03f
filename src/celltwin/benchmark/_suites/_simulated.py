"""Simulated suites (:func:`celltwin.simulate.simulate`): the truth is known.

``sim-combinations``
    Simulated knockouts and pairs with true interactions; GEARS-style splits
    (:func:`celltwin.split.split_combinations`), one seed per fold. Adds interaction recovery
    (:func:`interaction_scores`), reported per category (``unseen_single``, ``combo_seen0/1/2``).
``sim-doses``
    Simulated drugs at five doses in two contexts; unseen doses
    (:func:`celltwin.split.split_doses`): the highest, the lowest, and one random dose per drug
    (one fold each).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from numpy.typing import NDArray

from ..._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, split_combination
from ...eval import interaction_pearson
from ...models import dose_components
from ...simulate import simulate
from ...split import split_combinations, split_doses
from .._features import FoldData
from ._cell_task import EMBEDDING_MODELS, CellTask, Options, int_option, plus_registered, truthy
from ._cells import register_cell_suite

#: The interaction metric of sim-combinations (:func:`celltwin.eval.interaction_pearson`), scored
#: by the suite itself: it needs the simulator's true interactions, which cells do not give.
INTERACTION_METRIC = "interaction_pearson"


# --- simulated suites --------------------------------------------------------------------------


@cache
def _simulation(kind: str, smoke: bool, data_seed: int, cells: int | None = None) -> Any:
    if kind == "combinations":
        return simulate(
            n_genes=60 if smoke else 200,
            n_tfs=10 if smoke else 20,
            contexts=("A",),
            n_perturbations=8 if smoke else 16,
            combinations=8 if smoke else 24,
            cells_per_condition=cells or (25 if smoke else 100),
            seed=data_seed,
        )
    return simulate(
        n_genes=40 if smoke else 200,
        n_tfs=6 if smoke else 20,
        contexts=("A", "B"),
        n_perturbations=0,
        combinations=0,
        drugs=3 if smoke else 10,
        doses=(0.01, 0.1, 1.0, 10.0, 100.0),
        cells_per_condition=25 if smoke else 80,
        seed=data_seed,
    )


def _sim_load(kind: str) -> Callable[[Options], AnnData]:
    def load(opts: Options) -> AnnData:
        sim = _simulation(
            kind, truthy(opts["smoke"]), int_option(opts, "data_seed"), _cells_option(opts)
        )
        adata = sim.adata.copy()
        for layer in list(adata.layers):
            del adata.layers[layer]
        return adata

    return load


def _cells_option(opts: Options) -> int | None:
    return int_option(opts, "cells_per_condition") if "cells_per_condition" in opts else None


def _combo_folds(adata: AnnData, opts: Options) -> list[str]:
    return [f"split{i}" for i in range(int_option(opts, "n_folds"))]


def _combo_assign(adata: AnnData, fold: str, opts: Options) -> None:
    seed = int(fold.removeprefix("split"))
    split_combinations(
        adata, test_single_fraction=0.25, test_seen2_fraction=0.25, val_fraction=0.0, seed=seed
    )


def _group_means(adata: AnnData, keys: Sequence[str]) -> dict[tuple[str, ...], NDArray[np.float64]]:
    """Mean expression (float64) of each group of obs columns ``keys``."""
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    x = np.asarray(x, dtype=np.float64)
    obs = adata.obs
    columns = [
        obs[k].astype(str).to_numpy() if k in obs.columns else np.full(adata.n_obs, "")
        for k in keys
    ]
    labels = np.array(["\x1f".join(t) for t in zip(*columns, strict=True)], dtype=object)
    out = {}
    for label in pd.unique(labels):
        out[tuple(str(label).split("\x1f"))] = x[labels == label].mean(axis=0)
    return out


def interaction_scores(
    fold: FoldData, predictions: Mapping[str, AnnData], simulation: Any
) -> pd.DataFrame:
    """Interaction recovery of each held-out combination, per model.

    A model's predicted interaction is its predicted effect of the combination minus its own
    additive expectation, the sum of its parts' effects as the model has them: a part held out
    in this fold contributes the model's prediction of it (combinations whose held-out parts
    the model did not predict get no row); a part trained on contributes its effect in the
    training cells (the data every model was given). Effects are mean predicted (or training)
    cells minus the mean of the context's query control cells. The true interaction is
    :attr:`Simulation.interactions` (the combination's true effect minus its singles' true
    effects).

    The score is their *partial* Pearson r (:func:`celltwin.eval.interaction_pearson`) over the
    fold's genes given the model's additive expectation ``s``: both interactions are first freed of their least-squares fit on
    ``[1, s]``. Without that, any prediction that merely shrinks the sum of its parts (the
    ``control`` model, which "predicts" a combination cancels its parts) correlates with the
    true interactions, which lean sub-additive in the simulator. A prediction with no
    interaction beyond ``s`` scores 0.

    Why not the *true* single effects as the reference (the earlier definition): then the
    predicted interaction carries the sampling noise of the measured singles a model builds on
    (about ten times the size of the simulator's interactions at 100 cells per condition), and
    any shrinkage of the additive prediction scores like a recovered interaction: a model that
    knew every true interaction exactly scored 0.09 and ``control`` 0.16.
    """
    genes = list(fold.genes)
    truth = _TrueInteractions.of(simulation, fold)
    rows = []
    for model, pred in predictions.items():
        pred = pred[:, pred.var_names.get_indexer(genes)]
        predicted = {
            key: mean - truth.control_mean[key[0]]
            for key, mean in _group_means(pred, [CONTEXT, PERTURBATION, DOSE]).items()
            if key[0] in truth.control_mean
        }
        for key in truth.combos:
            if key not in predicted:
                continue
            context, combo, d = key
            parts = [
                (context, part, pd_)
                for part, pd_ in zip(
                    split_combination(combo), dose_components(combo, d), strict=True
                )
            ]
            reference = [truth.trained.get(s, predicted.get(s)) for s in parts]
            known = [r for r in reference if r is not None]
            if len(known) < len(reference):
                continue
            additive = np.sum(known, axis=0)
            value = interaction_pearson(
                predicted[key] - additive, truth.interaction[truth.row[key]], additive=additive
            )
            rows.append((model, context, combo, INTERACTION_METRIC, float(value[0])))
    return pd.DataFrame(rows, columns=["model", CONTEXT, PERTURBATION, "metric", "value"])


@dataclass(frozen=True)
class _TrueInteractions:
    """What every model's interactions are scored against on one fold.

    ``interaction``: the simulator's true interactions on the fold's genes, one row per
    combination (``row``: its row by (context, perturbation, dose)); ``control_mean``: mean
    query control cells per context; ``trained``: effects of the training conditions;
    ``combos``: the held-out combinations with a true interaction.
    """

    interaction: NDArray[np.float64]
    row: dict[tuple[str, str, str], int]
    control_mean: dict[str, NDArray[np.float64]]
    trained: dict[tuple[str, ...], NDArray[np.float64]]
    combos: list[tuple[str, str, str]]

    @classmethod
    def of(cls, simulation: Any, fold: FoldData) -> _TrueInteractions:
        truth = simulation.interactions
        genes = list(fold.genes)
        inter = np.asarray(truth.X, dtype=np.float64)[:, truth.var_names.get_indexer(genes)]
        inter_row = {
            (str(c), str(p), str(d)): i
            for i, (c, p, d) in enumerate(truth.obs[[CONTEXT, PERTURBATION, DOSE]].to_numpy())
        }
        control_mean = {k[0]: v for k, v in _group_means(fold.query, [CONTEXT]).items()}
        trained = {
            key: mean - control_mean[key[0]]
            for key, mean in _group_means(fold.train, [CONTEXT, PERTURBATION, DOSE]).items()
            if key[1] != CONTROL and key[0] in control_mean
        }
        combos = [
            (str(c), str(p), str(d))
            for c, p, d in fold.conditions[[CONTEXT, PERTURBATION, DOSE]].to_numpy()
            if len(split_combination(str(p))) > 1 and (str(c), str(p), str(d)) in inter_row
        ]
        return cls(inter, inter_row, control_mean, trained, combos)


COMBINATIONS = CellTask(
    name="sim-combinations",
    load=_sim_load("combinations"),
    fold_names=_combo_folds,
    assign=_combo_assign,
    unseen=frozenset({"perturbation", "combination"}),
    models=plus_registered(
        ("control", "mean", "additive", "linear"), unseen=None, extra=("transition",)
    ),
    metrics=("pearson_delta", INTERACTION_METRIC, "mae", "pearson_delta_top20_de"),
    defaults={
        "smoke": False,
        "model_params": {},
        "n_top_genes": None,
        "n_folds": 5,
        "data_seed": 0,
        # v3: 500 cells per condition. At 100 the simulated interactions (about 7% of the
        # effects' size) drown in sampling noise: the measured combination itself recovered
        # only 0.07 of them (partial r), so no model could be told apart from `additive`.
        "cells_per_condition": 500,
    },
    smoke={"n_folds": 2, "cells_per_condition": 25},
    truth_extra=lambda opts: _simulation(
        "combinations", truthy(opts["smoke"]), int_option(opts, "data_seed"), _cells_option(opts)
    ),
    extra_scores=interaction_scores,
)


_DOSE_FOLDS = {"highest": ("highest", 0), "lowest": ("lowest", 0), "random": ("random", 0)}


def _dose_assign(adata: AnnData, fold: str, opts: Options) -> None:
    which, seed = _DOSE_FOLDS[fold]
    split_doses(adata, which=which, n_test=1, seed=seed)  # type: ignore[arg-type]


def _drug_identity(fold: FoldData) -> pd.DataFrame:
    """One-hot drug identity (a drug's doses share it): the embedding of the dose-free models."""
    drugs = sorted(
        {part for p in fold.train.obs[PERTURBATION].astype(str) for part in split_combination(p)}
        | {part for p in fold.conditions[PERTURBATION] for part in split_combination(p)}
    )
    return pd.DataFrame(np.eye(len(drugs)), index=pd.Index(drugs), columns=drugs)


def _dose_fit_kwargs(model: str, fold: FoldData, opts: Options) -> dict[str, Any]:
    # Simulated drugs have no structures: every embedding model gets the drug's identity (its
    # doses share it; `transition` adds log-dose to features itself).
    if model in EMBEDDING_MODELS:
        return {"perturbation_features": _drug_identity(fold)}
    return {}


DOSES = CellTask(
    name="sim-doses",
    load=_sim_load("doses"),
    fold_names=lambda adata, opts: list(_DOSE_FOLDS),
    assign=_dose_assign,
    unseen=frozenset(),
    models=plus_registered(
        ("control", "mean", "linear", "nearest_perturbation", "nearest_dose"),
        unseen=None,
        extra=("transition",),
    ),
    metrics=("pearson_delta", "mae", "pearson_delta_top20_de", "energy_distance"),
    defaults={"smoke": False, "model_params": {}, "n_top_genes": None, "data_seed": 0},
    smoke={},
    fit_kwargs=_dose_fit_kwargs,
)


register_cell_suite(
    COMBINATIONS,
    # 2: interaction_pearson against the model's own additive expectation (partial r).
    # 3: 500 cells per condition (was 100), so interactions rise above sampling noise.
    version="3",
    description="Simulated knockouts and pairs with true interactions: GEARS splits (unseen "
    "singles, combo_seen0/1/2), interaction recovery against the simulator's truth.",
    data="celltwin.simulate",
)
register_cell_suite(
    DOSES,
    version="1",
    description="Simulated drugs at five doses in two contexts: predict unseen doses (highest, "
    "lowest, random per drug).",
    data="celltwin.simulate",
)
