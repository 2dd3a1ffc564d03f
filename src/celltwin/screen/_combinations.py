"""Combinations: a pair against its additive expectation, Norman et al. 2019's measures, a rank.

:func:`interactions` asks a model for a list of pairs and their singles in one batched
:func:`celltwin.models.predict_effects` call; :func:`observed_interactions` computes the same
table from measured cells; :func:`compare_interactions` puts the two side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    IN_DOMAIN,
    PERTURBATION,
    PREDICTION_SOURCE,
    join_combination,
    split_combination,
)
from ..eval import interaction_class, interaction_fit
from ..models import Model, predict_effects

__all__ = [
    "ADDITIVE_TOLERANCE",
    "INTERACTION_COLUMNS",
    "compare_interactions",
    "interactions",
    "observed_interactions",
]

#: A pair whose residual from the sum of its singles is below this share of the sum's norm is
#: ``ADDITIVE``, before the GEARS rules are asked (see :func:`interactions`).
ADDITIVE_TOLERANCE = 0.1

#: Columns of the tables of :func:`interactions` and :func:`observed_interactions`.
INTERACTION_COLUMNS = (
    "rank",
    "pair",
    "first",
    "second",
    CONTEXT,
    "kind",
    "score",
    "score_lower",
    "score_upper",
    "gi_class",
    "c1",
    "c2",
    "magnitude",
    "model_fit",
    "dcor",
    "dcor_singles",
    "dominance",
    "equality",
    "excess",
    "cosine_distance",
    "norm_pair",
    "norm_additive",
    IN_DOMAIN,
    PREDICTION_SOURCE,
)

_N_SAMPLES = 50  # draws from the per-gene intervals for the score's interval
_ROUNDING = 1e-5  # relative residual of float32 effects that add up exactly


def _pair_parts(pairs: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, str, str]]:
    """``(label, first, second)`` per pair, the label canonical (sorted, ``+``-joined)."""
    if isinstance(pairs, str):
        raise TypeError(
            f"'pairs' must be a list of pairs such as ['A+B'] (got the string {pairs!r})"
        )
    out, seen = [], set()
    for pair in pairs:
        parts = split_combination(pair) if isinstance(pair, str) else [str(p) for p in pair]
        label = join_combination(parts)
        if len(parts) != 2 or len(split_combination(label)) != 2:
            raise ValueError(
                f"'pairs' must hold pairs of two different perturbations, as 'A+B' or ('A', 'B') "
                f"(got {pair!r})"
            )
        if label not in seen:
            seen.add(label)
            first, second = split_combination(label)
            out.append((label, first, second))
    if not out:
        raise ValueError("'pairs' is empty: give at least one pair such as ['A+B']")
    return out


def interactions(
    model: Model,
    adata: AnnData | None,
    *,
    pairs: Sequence[str] | Sequence[Sequence[str]],
    context: str,
    seed: int = 0,
    method: Literal["theil_sen", "ols"] = "theil_sen",
) -> pd.DataFrame:
    """Predicted interaction of each pair with its singles, ranked from the most interacting.

    For pair ``A+B`` the model predicts the effects (mean change of log1p expression against
    the context's controls) of ``A``, ``B`` and ``A+B``, all in one call of
    :func:`celltwin.models.predict_effects`. The pair is compared with its additive
    expectation ``A + B``:

    ``score`` (the rank)
        ``||AB - (A + B)|| / ||A + B||``: the residual from additivity as a share of the
        additive effect; 0 for an additive pair (below 1e-5, float32 rounding, it is set to
        0, so additive pairs tie). ``score_lower``/``score_upper``: its 5th and
        95th percentiles over 50 draws of the three effects, each effect placed uniformly
        within the model's interval, all its genes at the same quantile (an effect without an
        interval, such as a measured single, keeps its value; NaN when the model gives no
        intervals at all).
    ``excess``
        ``||AB|| / ||A + B|| - 1``: above 0 the pair does more than its sum, below 0 less.
    ``cosine_distance``
        ``1 - cos(AB, A + B)``: the pair's direction away from the sum.
    ``c1``, ``c2``, ``magnitude``, ``model_fit``, ``dcor``, ``dcor_singles``, ``dominance``, ``equality``
        Norman et al. 2019's fit ``AB ~ c1 A + c2 B`` (:func:`celltwin.eval.interaction_fit`).
    ``gi_class``
        ``ADDITIVE`` when ``score < ADDITIVE_TOLERANCE`` (0.1); else the GEARS class of
        :func:`celltwin.eval.interaction_class`. The GEARS rules were read off Norman's real
        pairs, none exactly additive: at ``c1 = c2 = 1`` the magnitude is ``sqrt(2)`` and the
        rules alone would call an exactly additive pair potentiation or synergy.

    Parameters
    ----------
    model
        A fitted model that predicts the pairs (e.g. ``transition``, ``additive``).
    adata
        Control cells of ``context`` (``None`` for models that predict without cells).
    pairs
        ``["A+B", ...]`` or ``[("A", "B"), ...]``; labels are made canonical (sorted).
    context
        The context (cell type or line) of every prediction.
    seed
        Seed of generated cells and of the interval draws.
    method
        Regression of Norman's fit: ``"theil_sen"`` (robust, as Norman and GEARS) or ``"ols"``.

    Returns
    -------
    pandas.DataFrame
        :data:`INTERACTION_COLUMNS`, one row per pair, ``rank`` 1 the most interacting; ``kind``
        ``"predicted"``; ``in_domain`` and ``prediction_source`` of the pair's prediction.

    Examples
    --------
    >>> from celltwin.models import get_model
    >>> from celltwin.simulate import simulate
    >>> sim = simulate(n_genes=40, n_tfs=5, contexts=("A",), n_perturbations=4,
    ...                combinations=2, cells_per_condition=20, seed=0)
    >>> model = get_model("additive").fit(sim.adata)
    >>> pairs = list(sim.interactions.obs["perturbation"])
    >>> table = interactions(model, None, pairs=pairs, context="A")
    >>> table["gi_class"].tolist()  # the sum of the singles: no interaction
    ['ADDITIVE', 'ADDITIVE']
    """
    parts = _pair_parts(pairs)
    singles = sorted({p for _, a, b in parts for p in (a, b)})
    labels = singles + [label for label, _, _ in parts]
    conditions = pd.DataFrame({CONTEXT: str(context), PERTURBATION: labels, DOSE: ""})
    effects = predict_effects(model, adata, conditions=conditions, seed=seed)
    x = np.asarray(effects.X, dtype=np.float64)
    lower = np.asarray(effects.layers["lower"], dtype=np.float64)
    upper = np.asarray(effects.layers["upper"], dtype=np.float64)
    row = {label: i for i, label in enumerate(labels)}
    index = np.array([[row[a], row[b], row[label]] for label, a, b in parts])
    table = _measures(parts, x[index], method=method)
    table["score_lower"], table["score_upper"] = _score_interval(
        x[index], lower[index], upper[index], seed=seed
    )
    pair_obs = effects.obs.iloc[index[:, 2]]
    table[IN_DOMAIN] = pd.to_numeric(pair_obs[IN_DOMAIN], errors="coerce").to_numpy(float)
    table[PREDICTION_SOURCE] = pair_obs[PREDICTION_SOURCE].astype(str).to_numpy()
    return _finish(table, context=str(context), kind="predicted")


def observed_interactions(
    adata: AnnData,
    *,
    context: str,
    pairs: Sequence[str] | Sequence[Sequence[str]] | None = None,
    method: Literal["theil_sen", "ols"] = "theil_sen",
) -> pd.DataFrame:
    """Measured interaction of each pair whose singles are measured too, in one context.

    Effects are the mean of each perturbation's cells minus the mean of the control cells of
    ``context`` (``obs['perturbation'] == "control"``), on ``adata.X`` (log1p expression);
    the measures and the rank are those of :func:`interactions`, with ``kind`` ``"observed"``,
    ``in_domain`` NaN, ``prediction_source`` ``"measured"`` and no interval.

    Parameters
    ----------
    adata
        Cells with obs ``perturbation`` and ``context``: the controls, the pairs and their
        singles. A pair's label may list its parts in any order.
    context
        The context whose cells are used.
    pairs
        Pairs to measure; default every measured pair whose two singles are measured.
    method
        As in :func:`interactions`.

    Returns
    -------
    pandas.DataFrame
        :data:`INTERACTION_COLUMNS`.
    """
    for key in (PERTURBATION, CONTEXT):
        if key not in adata.obs:
            raise KeyError(f"observed_interactions: adata.obs has no column {key!r}")
    cells = adata[adata.obs[CONTEXT].astype(str).to_numpy() == str(context)]
    if cells.n_obs == 0:
        known = sorted(adata.obs[CONTEXT].astype(str).unique())
        raise ValueError(f"no cells in context {context!r}; contexts: {known}")
    names = np.array([join_combination(split_combination(p)) if p != CONTROL else CONTROL
                      for p in cells.obs[PERTURBATION].astype(str)], dtype=object)  # fmt: skip
    x = cells.X.toarray() if hasattr(cells.X, "toarray") else np.asarray(cells.X)
    means = pd.DataFrame(np.asarray(x, dtype=np.float64)).groupby(names).mean()
    if CONTROL not in means.index:
        raise ValueError(f"no control cells ('{CONTROL}') in context {context!r}")
    effect = means.drop(index=CONTROL) - means.loc[CONTROL]
    measured = set(effect.index)
    if pairs is None:
        pairs = sorted(p for p in measured if len(split_combination(p)) == 2)
        if not pairs:
            raise ValueError(f"no pair ('A+B') is measured in context {context!r}")
    asked = _pair_parts(pairs)
    parts = [(label, a, b) for label, a, b in asked if {label, a, b} <= measured]
    if not parts:
        raise ValueError(
            f"no pair of {[p[0] for p in asked][:5]} is measured with both its singles in "
            f"context {context!r}"
        )
    stack = np.stack([effect.loc[[a, b, label]].to_numpy() for label, a, b in parts])
    table = _measures(parts, stack, method=method)
    table["score_lower"] = table["score_upper"] = np.nan
    table[IN_DOMAIN] = np.nan
    table[PREDICTION_SOURCE] = "measured"
    return _finish(table, context=str(context), kind="observed")


def _measures(
    parts: Sequence[tuple[str, str, str]], stack: np.ndarray, *, method: str
) -> pd.DataFrame:
    """The measures of each pair from ``stack`` (pairs x [first, second, pair] x genes)."""
    first, second, pair = stack[:, 0], stack[:, 1], stack[:, 2]
    additive = first + second
    norm_add = np.linalg.norm(additive, axis=1)
    norm_pair = np.linalg.norm(pair, axis=1)
    safe = np.where(norm_add > 0, norm_add, np.nan)
    cosine = (pair * additive).sum(axis=1) / (safe * np.where(norm_pair > 0, norm_pair, np.nan))
    score = np.linalg.norm(pair - additive, axis=1) / safe
    # Below this the residual is the float32 rounding of the effects, not an interaction.
    score = np.where(score < _ROUNDING, 0.0, score)
    fits = [
        interaction_fit(pair[i], stack[i, :2], method=method)  # type: ignore[arg-type]
        for i in range(len(parts))
    ]
    table = pd.DataFrame(fits).reset_index(drop=True)
    table["gi_class"] = [
        "ADDITIVE" if s < ADDITIVE_TOLERANCE else interaction_class(f)
        for s, f in zip(score, fits, strict=True)
    ]
    table["pair"] = [label for label, _, _ in parts]
    table["first"] = [a for _, a, _ in parts]
    table["second"] = [b for _, _, b in parts]
    table["score"] = score
    table["excess"] = norm_pair / safe - 1.0
    table["cosine_distance"] = 1.0 - cosine
    table["norm_pair"] = norm_pair
    table["norm_additive"] = norm_add
    return table


def _score_interval(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """5th/95th percentiles of the score over draws uniform within the per-gene intervals.

    ``x``, ``lower``, ``upper``: pairs x [first, second, pair] x genes. An effect without
    bounds (``transition`` gives none for a measured single) keeps its value; NaN when no
    effect of any pair has bounds.
    """
    n = lower.shape[0]
    known = np.isfinite(lower) & np.isfinite(upper)
    if not known.any():
        return np.full(n, np.nan), np.full(n, np.nan)
    lower, upper = np.where(known, lower, x), np.where(known, upper, x)
    rng = np.random.default_rng(seed)
    # One uniform draw per effect, shared by its genes: each effect moves as a whole within
    # its interval. Independent draws per gene would add noise over hundreds of genes and
    # inflate every residual's norm (the interval would sit above the score).
    u = rng.random((_N_SAMPLES, *lower.shape[:2], 1))
    draws = lower[None] + (upper - lower)[None] * u
    additive = draws[:, :, 0] + draws[:, :, 1]
    norm = np.linalg.norm(additive, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.linalg.norm(draws[:, :, 2] - additive, axis=-1) / norm
    lo, hi = np.nanpercentile(score, [5, 95], axis=0)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def _finish(table: pd.DataFrame, *, context: str, kind: str) -> pd.DataFrame:
    """Context, kind and rank (1: the highest score; NaN scores last), columns in order."""
    table[CONTEXT] = context
    table["kind"] = kind
    table = table.sort_values(["score", "pair"], ascending=[False, True], na_position="last")
    table["rank"] = np.arange(1, len(table) + 1)
    return table.loc[:, list(INTERACTION_COLUMNS)].reset_index(drop=True)


def compare_interactions(predicted: pd.DataFrame, observed: pd.DataFrame) -> pd.DataFrame:
    """Predicted and observed measures of the pairs both tables hold, side by side.

    Parameters
    ----------
    predicted, observed
        Tables of :func:`interactions` and :func:`observed_interactions`.

    Returns
    -------
    pandas.DataFrame
        One row per pair in both (by ``pair`` and ``context``), every measure twice, suffixed
        ``_predicted`` and ``_observed``, and ``class_agrees``.
    """
    keys = ["pair", CONTEXT]
    measures = [c for c in INTERACTION_COLUMNS if c not in (*keys, "first", "second", "kind")]
    both = predicted[keys + measures].merge(
        observed[keys + measures], on=keys, suffixes=("_predicted", "_observed")
    )
    both["class_agrees"] = both["gi_class_predicted"] == both["gi_class_observed"]
    return both
