"""``lincs-doses``: drug signatures at unseen doses and of unseen drugs (LINCS L1000, A375).

The data (:data:`celltwin.data` ``lincs_ljp005_a375``) are one well per (drug, dose): level-4
robust z-scores against the plate over 978 landmark genes, *not* log-expression. Each well is
already a signature, so the suite predicts signature rows and scores them with signature
metrics (Spearman and Pearson over genes, top-k up and down overlap); it has no cells, no
control shift and no distribution metrics. Models are the dose-signature models
(:data:`celltwin.models.DOSE_MODELS`).

Tasks (fold names ``<task>/...``; the ``context`` column of the results holds the task, the
``perturbation`` column ``drug@dose``):

``interpolation/fold<k>`` (4 folds)
    For each drug with six doses, one of its four intermediate doses is hidden: drug ``j``'s
    dose ``1 + (j + k) mod 4`` (doses sorted), so over the folds each intermediate dose of each
    drug is predicted once. Everything else trains.
``extrapolation`` (1 fold)
    Every drug's highest dose is hidden; all lower doses train.
``new_drug/fold<k>`` (5 folds)
    The drugs with a structure (SMILES in ``../shared/data/drugs/lincs_drugs_smiles.csv``,
    matched by Broad id) are cut into five groups; a group's drugs are hidden at every dose,
    all other drugs train. Drug features: Morgan fingerprints
    (:func:`celltwin.priors.drug_embedding`) of every drug with a structure (inputs, not truth).

Models that cannot predict a task's units (the per-drug baselines on new drugs) record no rows
there (coverage < 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import CONTEXT, CONTROL, DOSE, PERTURBATION
from ..._settings import shared_dir
from ...data import load
from ...eval import spearman, topk_overlap
from ...models import DOSE_MODELS, UnseenConditionError
from ...priors import drug_embedding, read_smiles
from ._registry import RESULT_COLUMNS, Suite, register_suite

#: Dataset of the suite.
DATASET = "lincs_ljp005_a375"
#: Tasks and their number of folds.
TASKS = {"interpolation": 4, "extrapolation": 1, "new_drug": 5}
#: Metrics, the primary first.
METRICS = ("spearman", "pearson", "top50_up", "top50_down", "top100_up", "top100_down")


@cache
def plate() -> AnnData:
    """Treated wells of the plate (one per drug and dose), doses as numbers."""
    adata = load(DATASET, progress=False)
    treated = adata[adata.obs[PERTURBATION].astype(str) != CONTROL].copy()
    treated.obs[DOSE] = treated.obs["pert_dose_um"].astype(np.float64)
    return treated


@cache
def drug_features() -> pd.DataFrame:
    """Morgan fingerprints of the plate's drugs with a structure (rows = drug names)."""
    obs = plate().obs
    smiles = read_smiles(shared_dir() / "data/drugs/lincs_drugs_smiles.csv")
    ids = obs.drop_duplicates(PERTURBATION).set_index(PERTURBATION)["pert_id"].astype(str)
    known = {drug: smiles[i] for drug, i in ids.items() if i in smiles}
    return drug_embedding(known)


def _drugs(adata: AnnData) -> np.ndarray:
    return np.asarray(sorted(adata.obs[PERTURBATION].astype(str).unique()), dtype=object)


def held_out(adata: AnnData, fold: str) -> np.ndarray:
    """Boolean mask over the wells of ``adata`` (the plate): the wells hidden in ``fold``."""
    task, _, part = fold.partition("/")
    drugs = adata.obs[PERTURBATION].astype(str).to_numpy()
    dose = adata.obs[DOSE].to_numpy(dtype=np.float64)
    hidden = np.zeros(adata.n_obs, dtype=bool)
    if task not in TASKS or (TASKS[task] > 1) != bool(part):
        raise KeyError(f"unknown fold {fold!r}; folds: {lincs_folds()}")
    k = int(part.removeprefix("fold")) if part else 0
    if task == "new_drug":
        featured = np.array([d for d in _drugs(adata) if d in drug_features().index], dtype=object)
        groups = np.array_split(np.random.default_rng(0).permutation(featured), TASKS[task])
        return np.isin(drugs, groups[k])
    for j, drug in enumerate(_drugs(adata)):
        rows = np.flatnonzero(drugs == drug)
        rows = rows[np.argsort(dose[rows], kind="stable")]
        if task == "extrapolation":
            hidden[rows[-1]] = True
        elif rows.size == 6:
            hidden[rows[1 + (j + k) % 4]] = True
    return hidden


def lincs_folds(task: str = "all") -> list[str]:
    """Fold names of one task (or of all three)."""
    if task != "all" and task not in TASKS:
        raise ValueError(f"'task' must be one of {['all', *TASKS]} (got {task!r})")
    names = []
    for name, n in TASKS.items():
        if task in ("all", name):
            names += [name] if n == 1 else [f"{name}/fold{k}" for k in range(n)]
    return names


def score_signatures(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row signature metrics of :data:`METRICS`."""
    pc = pred - pred.mean(axis=1, keepdims=True)
    tc = truth - truth.mean(axis=1, keepdims=True)
    denom = np.sqrt((pc**2).sum(axis=1) * (tc**2).sum(axis=1))
    out = {
        "spearman": spearman(pred, truth),
        "pearson": np.divide((pc * tc).sum(axis=1), denom, out=np.zeros(len(pc)), where=denom > 0),
    }
    for k in (50, 100):
        for side in ("up", "down"):
            out[f"top{k}_{side}"] = topk_overlap(pred, truth, k=k, direction=side)
    return {m: np.asarray(out[m], dtype=np.float64) for m in METRICS}


def lincs_predictions(
    adata: AnnData, fold: str, *, models: Sequence[str]
) -> dict[str, np.ndarray | None]:
    """Each model fitted on the fold's training wells only, predicting its hidden wells (rows
    in plate order); ``None`` where a model cannot predict them (e.g. a per-drug baseline asked
    for new drugs)."""
    hidden = held_out(adata, fold)
    train = adata[~hidden]
    test = adata.obs.loc[hidden, [PERTURBATION, DOSE]].reset_index(drop=True)
    out: dict[str, np.ndarray | None] = {}
    for name in models:
        if name not in DOSE_MODELS:
            raise KeyError(f"no dose-signature model {name!r}; models: {list(DOSE_MODELS)}")
        model = DOSE_MODELS[name]().fit(train, features=drug_features())
        try:
            out[name] = model.predict(conditions=test)
        except UnseenConditionError:
            out[name] = None
    return out


def run_lincs_fold(
    fold: str,
    *,
    models: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = False,
    task: str = "all",
) -> pd.DataFrame:
    """Results of one fold (:data:`RESULT_COLUMNS`); models that cannot predict the fold's
    units record no rows (coverage 0)."""
    adata = plate()
    hidden = held_out(adata, fold)
    test = adata.obs.loc[hidden, [PERTURBATION, DOSE]]
    truth = np.asarray(adata.X, dtype=np.float64)[hidden]
    units = [f"{p}@{d:g}" for p, d in zip(test[PERTURBATION], test[DOSE], strict=True)]
    names = list(DOSE_MODELS) if models is None else list(models)
    frames = []
    for name, pred in lincs_predictions(adata, fold, models=names).items():
        if pred is None:
            continue
        for metric, value in score_signatures(pred, truth).items():
            frames.append(
                pd.DataFrame(
                    {
                        "fold": fold,
                        "model": name,
                        CONTEXT: fold.partition("/")[0],
                        PERTURBATION: units,
                        "metric": metric,
                        "value": value,
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    return pd.concat(frames, ignore_index=True).loc[:, list(RESULT_COLUMNS)]


def _folds(task: str = "all", **_: Any) -> list[str]:
    return lincs_folds(task)


register_suite(
    Suite(
        name="lincs-doses",
        version="1",
        description=(
            "LINCS L1000 plate LJP005 (A375, 55 kinase inhibitors x 6 doses, one well each; "
            "values are robust z-scores vs the plate, NOT log-expression, so signature metrics "
            "only): held-out intermediate doses (4 folds), the highest dose (1 fold), held-out "
            "drugs from structure and the other drugs (5 folds)."
        ),
        kind="signatures",
        folds=_folds,
        run_fold=run_lincs_fold,
        models=tuple(DOSE_MODELS),
        metrics=METRICS,
        data=DATASET,
        options={"task": "all"},
    )
)
