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
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from numpy.typing import NDArray

from ..._keys import CONTEXT, CONTROL, DOSE, PERTURBATION, split_combination
from ...models._base import ConditionKey, dose_components
from ...models._effects import EffectModel, describe
from .._features import FoldData
from ._cell_task import EMBEDDING_MODELS, CellTask, Options, int_option, plus_registered, truthy
from ._cells import register_cell_suite

#: Extra per-unit scores a suite computes itself (name -> higher is better).
INTERACTION_METRIC = "interaction_pearson"


# --- a baseline for unseen doses ------------------------------------------------------------------


def _log_dose(dose: str) -> NDArray[np.float64]:
    values = np.array([float(d) if d else 0.0 for d in dose.split("+")], dtype=np.float64)
    return np.log10(np.maximum(values, 1e-12))


class NearestDoseBaseline(EffectModel):
    """Shift control cells by the drug's training effect at the nearest dose (in log dose).

    For condition ``(c, p, dose)`` the candidates are the training conditions of ``p`` in
    context ``c``; the one whose dose is closest in ``log10`` (summed over the components of a
    combination) gives the effect (ties: the lower dose). Perturbations without training cells
    in ``c`` are refused. A suite-local baseline of ``sim-doses``.
    """

    name = "nearest_dose"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        table = self.conditions_
        out = np.zeros((len(keys), len(self.genes_)))
        problems = []
        for i, key in enumerate(keys):
            context, perturbation, dose = key
            rows = np.flatnonzero(
                (table[CONTEXT].to_numpy() == context)
                & (table[PERTURBATION].to_numpy() == perturbation)
            )
            if rows.size == 0:
                problems.append(f"{describe(key)} (no training dose of it in that context)")
                continue
            target = _log_dose(dose) if dose else np.zeros(len(dose_components(perturbation, "")))
            candidates = [
                (float(np.abs(_log_dose(str(table[DOSE].iloc[r])) - target).sum()), r) for r in rows
            ]
            best = min(candidates, key=lambda c: (c[0], _log_dose(str(table[DOSE].iloc[c[1]]))[0]))
            out[i] = self.delta_[best[1]]
        self._refuse(problems, fix="nearest_dose needs the drug measured in the same context.")
        return out


# --- simulated suites --------------------------------------------------------------------------


@cache
def _simulation(kind: str, smoke: bool, data_seed: int, cells: int | None = None) -> Any:
    from ...simulate import simulate

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
    from ...split import split_combinations

    seed = int(fold.removeprefix("split"))
    split_combinations(
        adata, test_single_fraction=0.25, test_seen2_fraction=0.25, val_fraction=0.0, seed=seed
    )


def _pearson_rows(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.einsum("ij,ij->i", a, b) / den, np.nan)


def _partial_pearson(
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> float:
    """Pearson r of ``x`` and ``y`` over genes after removing from both their fit on ``[1, z]``.

    0 when nothing of ``x`` is left (a prediction with no interaction beyond the additive one
    recovers none).
    """
    design = np.column_stack([np.ones_like(z), z])

    def residual(v: NDArray[np.float64]) -> NDArray[np.float64]:
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    rx, ry = residual(x), residual(y)
    # Below this, what is left is float32 rounding of the predicted cells, not an interaction.
    scale = max(float(np.linalg.norm(x)), float(np.linalg.norm(z)), 1e-12)
    if float(np.linalg.norm(rx)) <= 1e-5 * scale or not np.any(ry):
        return 0.0
    return float(_pearson_rows(rx[None, :], ry[None, :])[0])


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

    The score is their *partial* Pearson r over the fold's genes given the model's additive
    expectation ``s``: both interactions are first freed of their least-squares fit on
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
    rows = []
    for model, pred in predictions.items():
        pred = pred[:, pred.var_names.get_indexer(genes)]
        predicted = {
            key: mean - control_mean[key[0]]
            for key, mean in _group_means(pred, [CONTEXT, PERTURBATION, DOSE]).items()
            if key[0] in control_mean
        }
        for key in combos:
            if key not in predicted:
                continue
            context, combo, d = key
            parts = [
                (context, part, pd_)
                for part, pd_ in zip(
                    split_combination(combo), dose_components(combo, d), strict=True
                )
            ]
            reference = [trained.get(s, predicted.get(s)) for s in parts]
            known = [r for r in reference if r is not None]
            if len(known) < len(reference):
                continue
            additive = np.sum(known, axis=0)
            value = _partial_pearson(predicted[key] - additive, inter[inter_row[key]], additive)
            rows.append((model, context, combo, INTERACTION_METRIC, value))
    return pd.DataFrame(rows, columns=["model", CONTEXT, PERTURBATION, "metric", "value"])


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
    from ...split import split_doses

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
    local_models={"nearest_dose": NearestDoseBaseline},
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
