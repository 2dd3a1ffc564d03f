"""The virtual twin: a sample's cells become a context, and candidates are ranked by how far
they move it toward a reference population (``move_population``).

The model never saw the sample: its cells are handed to the model as the control cells of a new
context (``context_name``), so every prediction is for an unseen context, answered from those
cells alone (``transition`` transfers each treatment's effect from the training contexts most
like the sample; the effect baselines use their context-free effects). The returned
:class:`TwinResult` has the columns of a screen's table and the populations to plot: the sample,
the reference and the top hits' predicted cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import norm

from .._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    IN_DOMAIN,
    PERTURBATION,
    PREDICTION_SOURCE,
    join_combination,
)
from ..eval import benjamini_hochberg
from ..models import CellModel, Model, UnseenConditionError, predict_effects
from ._objective import Objective
from ._population import move_population

__all__ = ["POPULATION", "TABLE_COLUMNS", "TwinResult", "virtual_twin"]

#: obs column of :attr:`TwinResult.cells`: ``sample``, ``reference`` or a hit's label.
POPULATION = "population"
#: Columns of a screen's ranked table (the screen contract).
TABLE_COLUMNS = ("rank", "label", "perturbation", "dose", "kind", "score", "lower", "upper",
                 "pvalue", "fdr", "in_domain", "prediction_source", "top_genes")  # fmt: skip
_BATCH = 1024
_N_TOP_GENES = 5
_N_DRAWS = 30  # effect draws per top hit for the score interval


@dataclass(frozen=True, eq=False)  # holds AnnData
class TwinResult:
    """A virtual-twin screen, shaped as a screen result.

    Attributes
    ----------
    table
        Ranked candidates (best first), columns :data:`TABLE_COLUMNS`.
    effects
        Predicted effects of the top hits (rows in rank order, obs_names = labels), layers
        ``lower``/``upper``.
    cells
        Cells to plot: the sample, the reference and each top hit's predicted population,
        obs :data:`POPULATION` (``"sample"``, ``"reference"`` or the hit's label) and ``rank``
        (0 for sample and reference).
    objective
        The ``move_population`` objective used.
    context
        The name the sample's cells were given as a context.
    meta
        Model, counts, the energy distance before any shift, what the pairs step did, seed.
    """

    table: pd.DataFrame
    effects: AnnData
    cells: AnnData
    objective: Objective
    context: str
    meta: dict[str, Any] = field(default_factory=dict)


def _as_conditions(candidates: Sequence[str] | pd.DataFrame, context: str) -> pd.DataFrame:
    """Candidates as a table of ``label``, ``perturbation``, ``dose`` (context added)."""
    if isinstance(candidates, pd.DataFrame):
        frame = candidates
    elif hasattr(candidates, "table"):  # the engine's Candidates
        frame = candidates.table
    else:
        if isinstance(candidates, str):
            raise TypeError("'candidates' must be a list of perturbations, not one string")
        frame = pd.DataFrame({PERTURBATION: [str(c) for c in candidates]})
    if PERTURBATION not in frame:
        raise ValueError(f"'candidates' needs a '{PERTURBATION}' column (got {list(frame)})")
    out = pd.DataFrame({PERTURBATION: frame[PERTURBATION].astype(str).to_numpy()})
    out[DOSE] = frame[DOSE].astype(str).to_numpy() if DOSE in frame else ""
    labels = frame["label"].astype(str).to_numpy() if "label" in frame else None
    if labels is None:
        labels = np.where(out[DOSE] == "", out[PERTURBATION], out[PERTURBATION] + "@" + out[DOSE])
    out.insert(0, "label", labels)
    out = out[out[PERTURBATION] != CONTROL].drop_duplicates("label").reset_index(drop=True)
    if out.empty:
        raise ValueError("'candidates' holds no perturbation (control is not a candidate)")
    out[CONTEXT] = context
    return out


def _rank(
    model: Model, query: AnnData, conditions: pd.DataFrame, objective: Objective, seed: int
) -> tuple[AnnData, np.ndarray]:
    """Predicted effects of every candidate and their scores, in batches.

    The one place the twin asks a model; when the screen engine (``screen()``) lands it can
    answer here instead.
    """
    parts = []
    for start in range(0, len(conditions), _BATCH):
        part = conditions.iloc[start : start + _BATCH]
        parts.append(predict_effects(model, query, conditions=part, seed=seed))
    effects = parts[0] if len(parts) == 1 else _concat(parts)
    effects.obs_names = conditions["label"].to_numpy()
    scores = objective.score(np.asarray(effects.X, dtype=np.float64), list(effects.var_names))
    return effects, scores


def _concat(parts: list[AnnData]) -> AnnData:
    import anndata as ad

    return ad.concat(parts, axis=0, merge="same", index_unique=None)


def _query(sample: AnnData, model: Model, context: str) -> AnnData:
    """The sample's cells as control cells of the context ``context``, on the model's genes."""
    genes = list(getattr(model, "genes_", sample.var_names))
    missing = [g for g in genes if g not in set(sample.var_names)]
    if missing:
        raise ValueError(
            f"'sample' lacks {len(missing)} of the model's genes (e.g. {missing[:3]}); give it "
            "the genes the model was trained on"
        )
    query = AnnData(X=sample[:, genes].X.copy(), var=pd.DataFrame(index=pd.Index(genes)))
    query.obs_names = sample.obs_names.copy()
    query.obs[CONTEXT] = pd.Categorical([context] * query.n_obs)
    query.obs[PERTURBATION] = pd.Categorical([CONTROL] * query.n_obs)
    query.obs[DOSE] = ""
    query.uns = dict(sample.uns)
    return query


def _pairs(model: Model, query: AnnData, singles: pd.DataFrame, n: int, context: str,
           objective: Objective, seed: int) -> tuple[AnnData | None, np.ndarray, str]:  # fmt: skip
    """All pairs of the ``n`` best singles (without doses), predicted and scored."""
    names = [p for p in singles[PERTURBATION].head(n) if "+" not in p]
    labels = sorted({join_combination(sorted(pair)) for pair in combinations(names, 2)})
    if not labels:
        return None, np.zeros(0), "no pairs (fewer than 2 singles)"
    table = pd.DataFrame({"label": labels, PERTURBATION: labels, DOSE: "", CONTEXT: context})
    try:
        effects, scores = _rank(model, query, table, objective, seed)
    except UnseenConditionError as err:
        return None, np.zeros(0), f"pairs refused by {model.name}: {err}"
    return effects, scores, f"{len(labels)} pairs of the top {len(names)} singles"


def _score_interval(objective: Objective, effects: AnnData, level: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Score interval of each row from draws of its effect within the effect's interval.

    Each gene is drawn independently from a normal with the interval's half-width over
    ``z(level)``; the interval is the spread of the drawn scores around their median, centred
    on the row's score (noise in every gene alone moves cells apart, so the drawn scores sit
    below the score; their spread is the uncertainty). Rows without intervals get NaN.
    """
    lo, hi = (np.asarray(effects.layers[k], dtype=np.float64) for k in ("lower", "upper"))
    x = np.asarray(effects.X, dtype=np.float64)
    out = np.full((2, x.shape[0]), np.nan)
    ok = np.flatnonzero(np.isfinite(lo).all(axis=1) & np.isfinite(hi).all(axis=1))
    if ok.size == 0:
        return out[0], out[1]
    sd = (hi[ok] - lo[ok]) / (2.0 * norm.ppf(0.5 + level / 2.0))
    rng = np.random.default_rng(seed)
    draws = x[ok][None] + sd[None] * rng.standard_normal((_N_DRAWS, *sd.shape))
    scores = objective.score(draws.reshape(-1, x.shape[1]), list(effects.var_names))
    scores = scores.reshape(_N_DRAWS, ok.size)
    q = np.quantile(scores, [(1 - level) / 2, (1 + level) / 2], axis=0)
    centre = objective.score(x[ok], list(effects.var_names))
    out[:, ok] = q - np.median(scores, axis=0) + centre
    return out[0], out[1]


def _table(conditions: pd.DataFrame, effects: AnnData, scores: np.ndarray,
           objective: Objective) -> pd.DataFrame:  # fmt: skip
    """The ranked table (all candidates), best first."""
    x = np.asarray(effects.X, dtype=np.float64)
    genes = np.asarray(effects.var_names)
    top = np.argsort(-np.abs(x), axis=1)[:, :_N_TOP_GENES]
    p = objective.pvalues(x, list(genes), scores)
    table = pd.DataFrame({
        "label": conditions["label"].to_numpy(), PERTURBATION: conditions[PERTURBATION].to_numpy(),
        DOSE: conditions[DOSE].to_numpy(), "kind": "predicted", "score": scores,
        "lower": np.nan, "upper": np.nan,
        "pvalue": np.full(len(scores), np.nan) if p is None else p,
        IN_DOMAIN: effects.obs[IN_DOMAIN].to_numpy(dtype=np.float64),
        PREDICTION_SOURCE: effects.obs[PREDICTION_SOURCE].astype(str).to_numpy(),
        "top_genes": [";".join(genes[row]) for row in top],
    })  # fmt: skip
    fdr = benjamini_hochberg(table["pvalue"].fillna(1.0).to_numpy())
    table.insert(table.columns.get_loc("pvalue") + 1, "fdr", np.where(p is None, np.nan, fdr))
    table = table.iloc[objective.best_first(scores)].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[list(TABLE_COLUMNS)]


def _populations(model: Model, query: AnnData, reference: AnnData, hits: pd.DataFrame,
                 effects: AnnData, *, context: str, n_cells: int, seed: int) -> AnnData:  # fmt: skip
    """Sample, reference and the hits' predicted cells on the genes they share."""
    genes = [g for g in query.var_names if g in set(reference.var_names)]
    rng = np.random.default_rng(seed)

    def draw(a: AnnData) -> np.ndarray:
        rows = rng.choice(a.n_obs, size=n_cells, replace=False) if a.n_obs > n_cells else None
        return _dense((a if rows is None else a[np.sort(rows)])[:, genes].X)

    blocks = [draw(query), draw(reference)]
    names = ["sample", "reference"]
    if isinstance(model, CellModel) and len(hits):
        conds = pd.DataFrame({CONTEXT: context, PERTURBATION: hits[PERTURBATION], DOSE: hits[DOSE]})
        pred = model.predict(query, conditions=conds, n_cells=n_cells, seed=seed)
        dose = pred.obs[DOSE].astype(str) if DOSE in pred.obs else ""
        key = pred.obs[PERTURBATION].astype(str) + "|" + dose
        for label, pert, dose in hits[["label", PERTURBATION, DOSE]].itertuples(index=False):
            blocks.append(_dense(pred[(key == f"{pert}|{dose}").to_numpy(), genes].X))
            names.append(label)
    else:  # no cells from the model: the sample's cells shifted by the effect
        base = blocks[0]
        for label in hits["label"]:
            shift = _dense(effects[[label], genes].X)
            blocks.append(np.maximum(base + shift, 0.0))
            names.append(label)
    rank = {label: i + 1 for i, label in enumerate(hits["label"])}
    obs = pd.DataFrame({
        POPULATION: np.repeat(names, [len(b) for b in blocks]),
        "rank": np.repeat([rank.get(n, 0) for n in names], [len(b) for b in blocks]),
    })  # fmt: skip
    obs.index = pd.Index([f"cell{i}" for i in range(len(obs))])
    return AnnData(X=np.vstack(blocks).astype(np.float32), obs=obs,
                   var=pd.DataFrame(index=pd.Index(genes)))  # fmt: skip


def _dense(x: object) -> np.ndarray:
    toarray = getattr(x, "toarray", None)
    return np.asarray(toarray() if callable(toarray) else x, dtype=np.float64)


def virtual_twin(
    model: Model,
    sample: AnnData,
    *,
    reference: AnnData,
    candidates: Sequence[str] | pd.DataFrame,
    context_name: str = "sample",
    top: int = 10,
    pairs_of_top: int = 0,
    n_cells: int = 200,
    n_components: int = 100,
    seed: int = 0,
) -> TwinResult:
    """Rank perturbations by how far they move a sample's cells toward a reference population.

    The sample's cells (a patient, a disease line) become the control cells of a new context
    ``context_name``; the model predicts every candidate's mean effect there from those cells
    alone, and the ``move_population`` objective (:func:`move_population`) scores each:
    the energy distance between sample and reference minus that after shifting the sample by
    the effect. The top hits' populations are then predicted as cells, for plotting beside the
    sample and the reference (:func:`celltwin.pl.twin_figure`).

    Parameters
    ----------
    model
        A fitted model (:func:`celltwin.models.predict_effects` must answer for it).
    sample
        The sample's cells, log1p CP10k in ``X``, with every gene of the model.
    reference
        The population to move toward (e.g. healthy cells), log1p CP10k, same genes.
    candidates
        Perturbation names, or a table with ``perturbation`` (and ``dose``, ``label``) columns
        (e.g. the ``table`` of the screen engine's ``Candidates``).
    context_name
        Name of the sample's context. A new name (the default) makes every prediction one for
        an unseen context, from the sample's cells alone. The name of a training context says
        "the sample is one of these": the model then answers as for that context (measured
        effects where it has them), from the sample's cells as its controls; models that
        refuse unseen contexts (``nearest_perturbation``) need this. ``meta['context_seen']``
        records which.
    top
        Hits whose score interval and predicted cells are computed.
    pairs_of_top
        Also rank every pair of the best ``pairs_of_top`` singles (0: none). A model that
        refuses pairs is noted in ``meta['pairs']``.
    n_cells
        Cells per population in :attr:`TwinResult.cells`.
    n_components
        PCA dimensions of the objective (:func:`move_population`).
    seed
        Seed of predictions, cell draws, PCA and null.

    Returns
    -------
    TwinResult
        The ranked table (columns of a screen's table), the top hits' effects and the cells of
        sample, reference and hits.
    """
    for key, value, low in (("top", top, 1), ("pairs_of_top", pairs_of_top, 0),
                            ("n_cells", n_cells, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"'{key}' must be an integer >= {low} (got {value!r})")
    trained = getattr(model, "conditions_", None)
    seen = trained is not None and context_name in set(trained[CONTEXT].astype(str))
    query = _query(sample, model, context_name)
    objective = move_population(sample, reference, n_components=n_components, seed=seed)
    conditions = _as_conditions(candidates, context_name)
    effects, scores = _rank(model, query, conditions, objective, seed)
    table = _table(conditions, effects, scores, objective)
    pair_note = "not asked"
    if pairs_of_top:
        pair_fx, pair_scores, pair_note = _pairs(
            model, query, table, pairs_of_top, context_name, objective, seed
        )
        if pair_fx is not None:
            pair_conds = pd.DataFrame({"label": pair_fx.obs_names, PERTURBATION: pair_fx.obs_names,
                                       DOSE: ""})  # fmt: skip
            effects = _concat([effects, pair_fx])
            conditions = pd.concat([conditions, pair_conds], ignore_index=True)
            table = _table(conditions, effects, np.r_[scores, pair_scores], objective)
    hits = table.head(top)
    top_effects = effects[hits["label"].to_numpy()].copy()
    level = float(getattr(model, "interval", 0.9))
    lower, upper = _score_interval(objective, top_effects, level, seed)
    table.loc[: len(hits) - 1, "lower"] = lower
    table.loc[: len(hits) - 1, "upper"] = upper
    cells = _populations(model, query, reference, hits, top_effects,
                         context=context_name, n_cells=n_cells, seed=seed)  # fmt: skip
    meta = {
        "model": model.name, "objective": objective.name, "context": context_name,
        "n_candidates": len(table), "n_sample_cells": int(sample.n_obs),
        "n_reference_cells": int(reference.n_obs),
        "distance_before": float(objective.params["distance_before"]),
        "pairs": pair_note, "interval": level if math.isfinite(lower[0]) else None,
        "context_seen": bool(seen), "ranked_by": "predict_effects", "seed": seed,
    }  # fmt: skip
    return TwinResult(table, top_effects, cells, objective, context_name, meta)
