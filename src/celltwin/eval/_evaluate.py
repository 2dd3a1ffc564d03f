"""Evaluate a prediction against real cells: the registered metrics, two floors and a ceiling.

:func:`evaluate` scores a prediction (cells, or pseudobulk profiles) against the true cells of every
(context, perturbation), with the metrics of :data:`~celltwin.eval.METRICS`; DE tests and PDS are
computed per context against that context's control cells. Next to the model it scores two floors
with exactly the same metrics (:mod:`celltwin.eval._baselines`: the *control* baseline and, given
training data, the *mean* baseline) and, as a ceiling, real data predicting itself
(:func:`~celltwin.eval.split_half_ceiling`).

The steps live next to this module: validation (:mod:`~celltwin.eval._validate`), planning
(:mod:`~celltwin.eval._plan`), the inputs of one context (:mod:`~celltwin.eval._context`), the
baselines (:mod:`~celltwin.eval._baselines`), scoring into rows (:mod:`~celltwin.eval._score`)
and reading files (:mod:`~celltwin.eval._files`). Everything the truth contributes is computed
once per context and shared by the model and both baselines, which is why this is faster than
scoring three predictions separately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from anndata import AnnData

from .._progress import progress_bar, timed
from ._plan import DEFAULT_METRICS, make_plan
from ._registry import VCC_METRICS
from ._result import Evaluation, summary_dict
from ._score import AGG_COLUMNS, Scored, score_context
from ._scores import vcc_score

__all__ = ["DEFAULT_METRICS", "evaluate"]


def evaluate(
    truth: AnnData,
    pred: AnnData,
    *,
    train: AnnData | None = None,
    metrics: Sequence[str] | None = None,
    ceiling: bool = True,
    n_repeats: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    allow_missing: bool = False,
    progress: bool = False,
) -> Evaluation:
    """Score a prediction against the truth, next to two baselines and a noise ceiling.

    Metrics are computed per (context, perturbation) -- per (context, perturbation, dose) when
    obs has doses -- and DE tests and PDS per context, against that context's control cells.
    Every input is checked before anything is computed; all problems are reported at once.

    Parameters
    ----------
    truth
        Canonical AnnData of real cells (log1p(CP10k) in X), control cells included, in one or
        several contexts.
    pred
        Canonical AnnData of predicted cells, or of predicted pseudobulk profiles (one row per
        condition, ``uns['celltwin']['prediction']['kind'] == 'pseudobulk'``, as
        :meth:`celltwin.models.Model.predict` writes). Genes are matched to the truth's by name.
        Its control cells serve as the predicted control (as in cell-eval); without any, the
        truth's control cells are used and ``params['pred_control']`` says so. Pseudobulk
        predictions get only the metrics computable from profiles; the others are listed in
        ``skipped`` with the reason.
    train
        Training cells (canonical). Enables the ``mean`` baseline (cell-eval's baseline: the
        equal-weight mean of the training centroids, control included, per context), the VCC
        score (:func:`~celltwin.eval.vcc_score`, when mae, des and pds are computed) and the
        Systema metrics (reference: the mean of the training perturbation centroids).
    metrics
        Registered metric names (see :func:`~celltwin.eval.list_metrics`); default
        :data:`DEFAULT_METRICS` (all but the distributional ones).
    ceiling
        Compute the split-half ceiling (real data predicting itself, at half depth; see
        :func:`~celltwin.eval.split_half_ceiling`). It recomputes the DE test on each half.
    n_repeats
        Random split halves for the ceiling.
    n_boot
        Bootstrap resamples (of perturbations) for the confidence intervals.
    seed
        Seed of the bootstrap, the split halves and cell sampling for distributional metrics.
    allow_missing
        Evaluate on the perturbations both sides have, instead of failing when a perturbation
        (or context) is on one side only; the dropped ones are listed in ``params['dropped']``.
    progress
        Show a progress bar over contexts.

    Returns
    -------
    Evaluation
        Per-perturbation values, summaries with bootstrap CIs, baselines, ceiling, the genes
        skipped metrics and the parameters (see :class:`~celltwin.eval.Evaluation`).

    Raises
    ------
    ValidationError
        Naming every problem found: genes missing from the prediction, NaN or infinite values,
        counts instead of log-normalised values, missing control cells, perturbations on one
        side only, contexts without perturbed cells.

    Examples
    --------
    >>> result = celltwin.eval.evaluate(test_cells, prediction, train=train_cells)  # doctest: +SKIP
    >>> result.summary["pds"]["mean"]  # doctest: +SKIP
    0.93
    >>> result.write("eval/")  # metrics.csv, summary.json and the other tables  # doctest: +SKIP
    >>> celltwin.pl.write_evaluation(result, "eval/")  # the same plus report.html  # doctest: +SKIP
    """
    if n_repeats < 1:
        raise ValueError(f"'n_repeats' must be >= 1 (got {n_repeats})")
    if n_boot < 1:
        raise ValueError(f"'n_boot' must be >= 1 (got {n_boot})")
    with timed("validate and align"):
        plan = make_plan(
            truth, pred, train=train, metrics=metrics, allow_missing=allow_missing, seed=seed
        )
    scored = Scored()
    for context in progress_bar(plan.contexts, desc="evaluate", enabled=progress):
        score_context(plan, context, scored, ceiling=ceiling, n_repeats=n_repeats, seed=seed)
    params = {
        **plan.params,
        "ceiling": bool(ceiling),
        "n_repeats": int(n_repeats),
        "n_boot": int(n_boot),
        "seed": int(seed),
        # The ceiling's metrics hold the model's (and the DE metrics a pseudobulk one skips).
        "higher_is_better": {m.name: m.higher_is_better for m in plan.ceiling_metrics},
        "descriptions": {m.name: m.description for m in plan.ceiling_metrics},
    }
    with timed("summaries with bootstrap CIs"):
        return _evaluation(
            scored, skipped=dict(plan.skipped), params=params, n_boot=n_boot, seed=seed
        )


def _evaluation(
    scored: Scored, *, skipped: dict[str, str], params: dict[str, Any], n_boot: int, seed: int
) -> Evaluation:
    """The scored rows as an :class:`Evaluation`: long tables, summaries, the VCC score."""
    frames = scored.frames
    columns = [*frames["model"][0].columns]
    long = {
        name: pd.concat(frames[name], ignore_index=True)
        if frames[name]
        else pd.DataFrame(columns=columns)
        for name in ("model", "mean", "control", "ceiling")
    }
    agg = {name: pd.DataFrame(scored.aggregates[name], columns=AGG_COLUMNS) for name in long}
    summaries = {
        name: summary_dict(long[name], agg[name], n_boot=n_boot, seed=seed)
        for name in long
        if frames[name]
    }
    baselines: dict[str, dict[str, dict[str, float]]] = {
        name: summaries[name] for name in ("mean", "control") if name in summaries
    }
    return Evaluation(
        per_perturbation=long["model"],
        summary=summaries["model"],
        baselines=baselines,
        ceiling=summaries.get("ceiling", {}),
        skipped=skipped,
        params=params,
        aggregate=agg["model"],
        baseline_values=pd.concat(
            [long[name].assign(baseline=name) for name in baselines], ignore_index=True
        ),
        ceiling_values=long["ceiling"],
        deltas=pd.concat(scored.deltas, ignore_index=True),
        scores=_vcc_scores(summaries["model"], baselines),
    )


def _vcc_scores(
    summary: Mapping[str, Mapping[str, float]],
    baselines: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, float]:
    """The VCC score against the mean baseline, when mae, des and pds were computed."""
    if "mean" not in baselines or not all(m in summary for m in VCC_METRICS):
        return {}
    base = baselines["mean"]
    return {
        "vcc_score": vcc_score(
            mae=summary["mae"]["mean"],
            des=summary["des"]["mean"],
            pds=summary["pds"]["mean"],
            baseline_mae=base["mae"]["mean"],
            baseline_des=base["des"]["mean"],
            baseline_pds=base["pds"]["mean"],
        )
    }
