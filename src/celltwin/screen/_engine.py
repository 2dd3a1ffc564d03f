"""The screen engine: candidates x model -> effects -> objective -> one ranked table.

Candidates go through in batches of ``batch_size`` (in the order of ``candidates.table``):
predicted ones through :func:`celltwin.models.predict_effects` (one batched call per batch;
a model's own ``predict_effects`` with ``n_cells`` when it takes that), measured ones straight
from their profiles. Each batch is scored (:mod:`._scoring`: score, the score's interval from
the effect intervals, p-values), its refused candidates set aside with their reason, and only
the best ``top`` rows' effects are kept, so memory does not grow with the screen. Cells are
generated at the end, for the top predicted hits only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import DOSE, PERTURBATION
from .._progress import progress_bar
from .._version import __version__
from ._assemble import ROW_COLUMNS, empty_rows, rank, top_cells, top_effects
from ._candidates import Candidates
from ._checkpoint import Checkpoint, Top, fingerprint
from ._predictions import BatchEffects, measured, predicted
from ._result import ScreenResult, describe
from ._scoring import DEFAULT_LEVEL, SCORE_SAMPLES, best_first, effect_sd, score_rows, top_genes
from ._setup import add_drugs, check_arguments, model_params, screen_genes

__all__ = ["screen"]

logger = logging.getLogger("celltwin")


def screen(
    model: Any,
    adata: AnnData | None,
    *,
    candidates: Candidates,
    objective: Any,
    context: str,
    top: int = 20,
    n_cells: int = 200,
    batch_size: int = 1024,
    time_budget: float | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
    seed: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> ScreenResult:
    """Rank candidates by an objective on their predicted (or measured) effects in a context.

    Parameters
    ----------
    model
        A fitted model (:func:`celltwin.models.load`), or ``None`` when every candidate is
        measured.
    adata
        The control cells of ``context`` (``obs['perturbation'] == "control"``); ``None`` for
        models that predict without cells (signature models, the effect baselines) when no
        cells are wanted.
    candidates
        What to rank (:class:`Candidates`, from :func:`genes`, :func:`pairs`, :func:`drugs`,
        :func:`measured`, ... and :func:`concat`).
    objective
        An :class:`Objective` (e.g. ``get_objective("reverse", query=...)``).
    context
        The context (cell line, cell type) the predicted candidates are asked about.
    top
        How many of the best rows keep their effects (``result.effects``) and, for predicted
        ones, get predicted cells (``result.cells``).
    n_cells
        Cells generated per top hit (and passed to a model's own batched ``predict_effects``
        when it takes ``n_cells``).
    batch_size
        Candidates per batch.
    time_budget
        Seconds: the screen stops after the batch that exceeds it, and the result says it is
        partial (``meta['complete']`` False, ``meta['n_scored']``); ``None``: no limit.
    checkpoint
        A folder: after each batch its rows are written there, and a screen with the same
        arguments and folder resumes after the last finished batch (to the result of an
        uninterrupted screen).
    progress
        Show a progress bar over the candidates.
    seed
        Seed of the predictions, of the interval sampling and of the generated cells.
    on_batch
        Called after each batch with (candidates done, candidates in all), e.g. to report
        progress to a server's job; an exception it raises stops the screen (a cancel).

    Returns
    -------
    ScreenResult
        The ranked table, the top hits' effects and cells, the refused candidates.

    Notes
    -----
    When measured profiles are screened, every candidate is scored on the genes the model and
    all the profiles share (``meta['n_genes']``, logged), so predicted and measured scores are
    comparable. A model fitted with drug fingerprints gets the SMILES of unseen library drugs
    added (:meth:`~celltwin.models.TransitionModel.add_perturbation_features`, in place).

    Examples
    --------
    >>> from celltwin import io, models, screen
    >>> model = models.load("model/")  # doctest: +SKIP
    >>> result = screen.screen(
    ...     model, io.read("split.h5ad"), context="THP-1",
    ...     candidates=screen.concat(screen.genes(["STAT1", "JAK2"]), screen.pairs(["STAT1", "JAK2"])),
    ...     objective=screen.get_objective("move", pathway="JAK-STAT", toward="down"),
    ... )  # doctest: +SKIP
    >>> result.table[["rank", "label", "score", "lower", "upper", "in_domain"]]  # doctest: +SKIP
    """
    numbers = {"top": top, "n_cells": n_cells, "batch_size": batch_size}
    check_arguments(model, adata, candidates, objective, context, numbers, time_budget)
    genes_, gene_note = screen_genes(model, candidates)
    table = candidates.table
    notes = [gene_note] if gene_note else []
    notes += add_drugs(model, table)
    level_seen: list[float] = []
    settings = {"top": top, "n_cells": n_cells, "batch_size": batch_size, "seed": seed}
    key = fingerprint(
        {
            "candidates": pd.util.hash_pandas_object(table, index=False).sum(),
            "objective": describe(objective),
            "context": context,
            "model": [getattr(model, "name", None), model_params(model)],
            "genes": genes_,
            "settings": settings,
        }
    )
    store = None if checkpoint is None else Checkpoint(checkpoint, key)
    done_rows = store.rows() if store is not None else []
    best = (store.top() if store is not None else None) or Top(
        [], np.zeros(0), *(np.zeros((0, len(genes_))) for _ in range(3))
    )
    t0 = time.monotonic()
    best, complete = _run_batches(
        model, adata, candidates, objective, store=store, best=best, done_rows=done_rows,
        genes=genes_, context=context, settings=settings, time_budget=time_budget,
        progress=progress, levels=level_seen, on_batch=on_batch,
    )  # fmt: skip
    all_rows = pd.concat(done_rows, ignore_index=True) if done_rows else empty_rows()
    ranked, refused = rank(all_rows, objective.direction)
    effects_ad = top_effects(ranked, best, genes_, top)
    cells = top_cells(model, adata, ranked, context=context, top=top, n_cells=n_cells, seed=seed)
    meta = {
        "complete": complete,
        "n_candidates": len(table),
        "n_scored": len(ranked),
        "n_refused": len(refused),
        "n_genes": len(genes_),
        "model": getattr(model, "name", None),
        **settings,
        "interval": level_seen[0] if level_seen else None,
        "score_samples": SCORE_SAMPLES,
        "seconds": round(time.monotonic() - t0, 3),
        "celltwin": __version__,
        "notes": notes,
    }
    if not complete:
        logger.warning(
            "screen stopped by its time budget: %d of %d candidates scored (meta['complete'] "
            "is False); run again with the same checkpoint to go on",
            len(ranked) + len(refused),
            len(table),
        )
    return ScreenResult(ranked, effects_ad, cells, objective, context, meta, refused)


def _run_batches(
    model: Any,
    adata: AnnData | None,
    candidates: Candidates,
    objective: Any,
    *,
    store: Checkpoint | None,
    best: Top,
    done_rows: list[pd.DataFrame],
    genes: list[str],
    context: str,
    settings: dict[str, int],
    time_budget: float | None,
    progress: bool,
    levels: list[float],
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Top, bool]:
    """Score the batches not done yet (appending to ``done_rows``); the best rows after them
    and whether every batch ran (``False`` when the time budget stopped the screen)."""
    table, batch_size = candidates.table, settings["batch_size"]
    starts = list(range(0, len(table), batch_size))
    first = store.done if store is not None else 0
    t0 = time.monotonic()
    bar = progress_bar(total=len(table), enabled=progress, desc="screen", unit="candidate")
    bar.update(min(first * batch_size, len(table)))
    try:
        for b in range(first, len(starts)):
            rows = table.iloc[starts[b] : starts[b] + batch_size]
            scored, effects = _batch(
                model, adata, candidates, rows, objective, context=context, genes=genes,
                seed=settings["seed"], batch=b, n_cells=settings["n_cells"], levels=levels,
            )  # fmt: skip
            best = _keep_best(best, scored, effects, objective.direction, settings["top"])
            done_rows.append(scored)
            if store is not None:
                store.save(b, scored, best)
            bar.update(len(rows))
            if on_batch is not None:
                on_batch(min(starts[b] + batch_size, len(table)), len(table))
            over = time_budget is not None and time.monotonic() - t0 > time_budget
            if over and b + 1 < len(starts):
                return best, False
    finally:
        bar.close()
    return best, True


def _batch(
    model: Any,
    adata: AnnData | None,
    candidates: Candidates,
    rows: pd.DataFrame,
    objective: Any,
    *,
    context: str,
    genes: list[str],
    seed: int,
    batch: int,
    n_cells: int,
    levels: list[float],
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Score one batch: its rows (scored and refused) and its scored rows' effects by label."""
    kinds = rows["kind"].to_numpy()
    parts: list[tuple[pd.DataFrame, BatchEffects]] = []
    pred_rows = rows[kinds == "predicted"]
    if len(pred_rows):
        got = predicted(
            model, adata, pred_rows, context=context, genes=genes, seed=seed + batch,
            n_cells=n_cells,
        )  # fmt: skip
        parts.append((pred_rows, got))
        if got.interval is not None and not levels:
            levels.append(got.interval)
    meas_rows = rows[kinds == "measured"]
    if len(meas_rows):
        assert candidates.profiles is not None  # Candidates checks it
        parts.append((meas_rows, measured(candidates.profiles, meas_rows["label"], genes)))
    level = levels[0] if levels else DEFAULT_LEVEL
    rng = np.random.default_rng([seed, batch])
    out, effects = [], {}
    for sub, got in parts:
        answered = sub.iloc[got.rows]
        sd = effect_sd(got.lower, got.upper, level)
        score, lower, upper, pvalue = score_rows(
            objective, got.effects, sd, genes, level=level, rng=rng,
            members=got.members, ensemble_sd=got.ensemble_sd,
        )  # fmt: skip
        frame = answered[["label", PERTURBATION, DOSE, "kind"]].copy()
        frame = frame.assign(
            score=score, lower=lower, upper=upper, pvalue=pvalue,
            in_domain=got.in_domain, prediction_source=got.source,
            top_genes=top_genes(got.effects, genes), order=answered.index.to_numpy(), reason="",
        )  # fmt: skip
        out.append(frame)
        for i, label in enumerate(answered["label"]):
            effects[label] = np.stack([got.effects[i], got.lower[i], got.upper[i]])
        if got.refused:
            gone = sub.iloc[sorted(got.refused)]
            out.append(
                gone[["label", PERTURBATION, DOSE, "kind"]].assign(
                    order=gone.index.to_numpy(),
                    reason=[got.refused[i] for i in sorted(got.refused)],
                )
            )
    frame = pd.concat(out, ignore_index=True).reindex(columns=ROW_COLUMNS)
    return frame.sort_values("order", kind="stable").reset_index(drop=True), effects


def _keep_best(
    best: Top, rows: pd.DataFrame, effects: dict[str, np.ndarray], direction: str, top: int
) -> Top:
    """The ``top`` best rows of the previous best and this batch (ties: candidate order)."""
    scored = rows[rows["reason"] == ""]
    labels = best.labels + scored["label"].tolist()
    stack = [np.stack([best.effects, best.lower, best.upper], axis=1)] + [
        effects[label][None] for label in scored["label"]
    ]
    data = np.concatenate(stack, axis=0) if labels else np.zeros((0, 3, best.effects.shape[1]))
    scores = np.concatenate([best.scores, scored["score"].to_numpy(float)])
    keep = best_first(scores, direction)[:top]
    kept = data[keep]
    return Top([labels[i] for i in keep], scores[keep], kept[:, 0], kept[:, 1], kept[:, 2])
