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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, PERTURBATION
from ..models import Model, UnseenConditionError
from ._candidates import Candidates, concat, genes, pairs
from ._engine import screen
from ._objective import Objective
from ._population import move_population
from ._result import ScreenResult

__all__ = ["POPULATION", "TwinResult", "virtual_twin"]

#: obs column of :attr:`TwinResult.cells`: ``sample``, ``reference`` or a hit's label.
POPULATION = "population"


@dataclass(frozen=True, eq=False)  # holds AnnData
class TwinResult:
    """A virtual-twin screen: a screen's result plus the populations to plot.

    Attributes
    ----------
    table
        Ranked candidates (best first), the columns of :attr:`ScreenResult.table`.
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
        The screen's meta, plus the energy distance before any shift, what the pairs step
        did and whether the context was a training one.
    refused
        Candidates the model refused, with the reason.
    """

    table: pd.DataFrame
    effects: AnnData
    cells: AnnData
    objective: Objective
    context: str
    meta: dict[str, Any] = field(default_factory=dict)
    refused: pd.DataFrame = field(default_factory=pd.DataFrame)


def _as_candidates(candidates: Candidates | Sequence[str] | pd.DataFrame) -> Candidates:
    """Candidates as the engine's :class:`Candidates` (names become :func:`genes`)."""
    if isinstance(candidates, Candidates):
        return candidates
    if isinstance(candidates, pd.DataFrame):
        if PERTURBATION not in candidates:
            raise ValueError(
                f"'candidates' needs a '{PERTURBATION}' column (got {list(candidates)})"
            )
        table = pd.DataFrame({PERTURBATION: candidates[PERTURBATION].astype(str).to_numpy()})
        table[DOSE] = candidates[DOSE].astype(str).to_numpy() if DOSE in candidates else ""
        label = table[PERTURBATION].where(
            table[DOSE] == "", table[PERTURBATION] + ":" + table[DOSE]
        )
        table.insert(0, "label", candidates["label"].astype(str).to_numpy()
                     if "label" in candidates else label.to_numpy())  # fmt: skip
        table["kind"] = "predicted"
        return Candidates(table)
    return genes(candidates)


def _screen(model: Model, query: AnnData, candidates: Candidates, objective: Objective, *,
            context: str, top: int, n_cells: int, seed: int) -> ScreenResult:  # fmt: skip
    """The engine's screen of the sample as a context; a model refusing every candidate
    raises with its first reason."""
    result = screen(model, query, candidates=candidates, objective=objective, context=context,
                    top=top, n_cells=n_cells, progress=False, seed=seed)  # fmt: skip
    if result.table.empty:
        reasons = "; ".join(dict.fromkeys(result.refused["reason"].astype(str)))
        raise UnseenConditionError(
            f"{model.name} refused every candidate in context {context!r}: {reasons[:400]}. "
            "Fix: a model that predicts unseen contexts (transition, mean, context_shift), or "
            "name the training context the sample comes from (context_name=...)"
        )
    return result


def _top_pairs(table: pd.DataFrame, n: int) -> Candidates:
    """Every pair of the ``n`` best predicted singles of a ranked table."""
    single = (table["kind"] == "predicted") & ~table[PERTURBATION].str.contains("+", regex=False)
    names = list(dict.fromkeys(table.loc[single, PERTURBATION].astype(str)))[:n]
    if len(names) < 2:
        raise ValueError(f"pairs_of_top={n}: the screen has {len(names)} single hits to pair")
    return pairs(names)


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


def _populations(result: ScreenResult, query: AnnData, reference: AnnData, *, n_cells: int,
                 seed: int) -> AnnData:  # fmt: skip
    """Sample, reference and the top hits' predicted cells on the genes they share; a model
    without cells gets the sample's cells shifted by each hit's effect (floored at 0)."""
    genes_ = [g for g in query.var_names if g in set(reference.var_names)]
    rng = np.random.default_rng(seed)

    def draw(a: AnnData) -> np.ndarray:
        rows = rng.choice(a.n_obs, size=n_cells, replace=False) if a.n_obs > n_cells else None
        return _dense((a if rows is None else a[np.sort(rows)])[:, genes_].X)

    blocks = [draw(query), draw(reference)]
    names = ["sample", "reference"]
    hits = [str(x) for x in result.effects.obs_names]
    for label in hits:
        if result.cells is not None and label in set(result.cells.obs["label"]):
            mine = result.cells[(result.cells.obs["label"] == label).to_numpy()]
            blocks.append(_dense(mine[:, genes_].X))
        else:
            shift = _dense(result.effects[[label], genes_].X)
            blocks.append(np.maximum(blocks[0] + shift, 0.0))
        names.append(label)
    rank = {label: i + 1 for i, label in enumerate(hits)}
    sizes = [len(b) for b in blocks]
    obs = pd.DataFrame({POPULATION: np.repeat(names, sizes),
                        "rank": np.repeat([rank.get(n, 0) for n in names], sizes)})  # fmt: skip
    obs.index = pd.Index([f"cell{i}" for i in range(len(obs))])
    return AnnData(X=np.vstack(blocks).astype(np.float32), obs=obs,
                   var=pd.DataFrame(index=pd.Index(genes_)))  # fmt: skip


def _dense(x: object) -> np.ndarray:
    toarray = getattr(x, "toarray", None)
    return np.asarray(toarray() if callable(toarray) else x, dtype=np.float64)


def virtual_twin(
    model: Model,
    sample: AnnData,
    *,
    reference: AnnData,
    candidates: Candidates | Sequence[str] | pd.DataFrame,
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
    alone, and the screen engine (:func:`screen`) ranks them by the ``move_population``
    objective (:func:`move_population`): the energy distance between sample and reference
    minus that after shifting the sample by the effect. The top hits' populations are then predicted as cells, for plotting beside the
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
        :class:`Candidates` (e.g. :func:`genes`, :func:`representable`, :func:`drugs`,
        measured profiles), perturbation names, or a table with ``perturbation`` (and
        ``dose``, ``label``) columns.
    context_name
        Name of the sample's context. A new name (the default) makes every prediction one for
        an unseen context, from the sample's cells alone. The name of a training context says
        "the sample is one of these": the model then answers as for that context (measured
        effects where it has them), from the sample's cells as its controls; models that
        refuse unseen contexts (``nearest_perturbation``) need this. ``meta['context_seen']``
        records which.
    top
        Hits that keep their effects and get predicted cells (every row gets its score, score
        interval, p-value and FDR from the engine).
    pairs_of_top
        Also rank every pair of the best ``pairs_of_top`` singles (0: none; else >= 2); the
        singles are screened again with the pairs, in one ranking. Pairs a model refuses are
        in :attr:`TwinResult.refused`, counted in ``meta['pairs']``.
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
    if pairs_of_top == 1:
        raise ValueError("'pairs_of_top' must be 0 (no pairs) or >= 2 (got 1)")
    trained = getattr(model, "conditions_", None)
    seen = trained is not None and context_name in set(trained[CONTEXT].astype(str))
    query = _query(sample, model, context_name)
    objective = move_population(sample, reference, n_components=n_components, seed=seed)
    cands = _as_candidates(candidates)

    def run(what: Candidates) -> ScreenResult:
        return _screen(model, query, what, objective, context=context_name, top=top,
                       n_cells=n_cells, seed=seed)  # fmt: skip

    result = run(cands)
    pair_note = "not asked"
    if pairs_of_top:
        pair_cands = _top_pairs(result.table, pairs_of_top)
        result = run(concat(cands, pair_cands))
        n_pairs = len(pair_cands.table)
        scored = result.table["label"].isin(pair_cands.table["label"]).sum()
        pair_note = f"{scored} of {n_pairs} pairs of the top {pairs_of_top} singles scored"
    cells = _populations(result, query, reference, n_cells=n_cells, seed=seed)
    meta = {**result.meta, "objective": objective.name, "context": context_name,
            "context_seen": bool(seen), "n_sample_cells": int(sample.n_obs),
            "n_reference_cells": int(reference.n_obs),
            "distance_before": float(objective.params["distance_before"]), "pairs": pair_note}  # fmt: skip
    return TwinResult(result.table, result.effects, cells, objective, context_name, meta,
                      result.refused)  # fmt: skip
