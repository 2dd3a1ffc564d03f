"""Uncertainty of the predicted effects: each gene's error variance of the classical estimate,
its split-conformal calibration on the members' validation errors, and the intervals of
:meth:`TransitionModel.predict_effects`.

A predicted gene effect's interval has half-width ``sqrt(q² v_g + z² ensemble_var_g)``: ``v_g``
from :func:`error_variance`, ``q`` from :func:`calibrate`, ``z`` the normal quantile of the
nominal coverage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.stats import norm

from ..._keys import CONTEXT, DOSE, PERTURBATION
from ._estimate import VIEWS
from ._features import Transfer

#: Pseudo-count (in conditions) shrinking each gene's error variance towards the view's mean.
_SHRINK = 3.0

#: A view and a per-gene error of one estimate (true minus estimated effect).
ViewError = tuple[str, np.ndarray]


def held_out_errors(transfer: Transfer, delta: np.ndarray, seed: int) -> list[ViewError]:
    """Errors of the classical estimate on each training condition estimated as held out."""
    return [(view, delta[row] - estimate) for row, view, estimate in transfer.views(seed)]


def error_variance(errors: Sequence[ViewError], delta: np.ndarray, n_genes: int) -> np.ndarray:
    """Per view and gene: error variance of the classical estimate on held-out conditions."""
    by_view: dict[str, list[np.ndarray]] = {v: [] for v in VIEWS}
    for view, error in errors:
        by_view[view].append(error)
    pooled = [e for v in VIEWS for e in by_view[v]]
    fallback = (
        np.mean(np.square(pooled), axis=0) if pooled else np.full(n_genes, float(np.mean(delta**2)))
    )
    out = np.zeros((len(VIEWS), n_genes))
    for j, view in enumerate(VIEWS):
        prior = fallback
        if by_view[view]:
            sq = np.square(by_view[view])
            mean_var = float(sq.mean())
            prior = np.full(n_genes, mean_var) * 0.5 + 0.5 * fallback
            out[j] = (sq.sum(axis=0) + _SHRINK * prior) / (len(sq) + _SHRINK)
        else:
            out[j] = prior
    return np.maximum(out, 1e-12)


def normal_quantile(interval: float) -> float:
    """``z`` of a two-sided normal interval of coverage ``interval``."""
    return float(norm.ppf(0.5 + interval / 2))


def calibrate(errors: Sequence[ViewError], error_var: np.ndarray, interval: float) -> float:
    """``q`` so that ``|error| <= q sqrt(v_g)`` for a fraction ``interval`` of ``errors``
    (the normal quantile when there are none)."""
    if not errors:
        return normal_quantile(interval)
    ratios = np.concatenate([np.abs(err) / np.sqrt(error_var[VIEWS.index(v)]) for v, err in errors])
    return float(np.quantile(ratios, interval))


def half_width(
    var: np.ndarray, sd: np.ndarray, *, calibration: float | np.ndarray, z: float
) -> np.ndarray:
    """Per gene, half the interval of an effect (classical variance ``var``, ensemble ``sd``)."""
    return np.sqrt(calibration**2 * var + z**2 * sd**2)


def effects_table(
    table: pd.DataFrame,
    genes: Sequence[str],
    *,
    mean: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    sd: np.ndarray,
    sources: Sequence[str],
    interval: float,
) -> AnnData:
    """The AnnData returned by :meth:`TransitionModel.predict_effects`."""
    lower, upper = bounds
    obs = pd.DataFrame(
        {
            CONTEXT: table[CONTEXT].to_numpy(),
            PERTURBATION: table[PERTURBATION].to_numpy(),
            DOSE: table[DOSE].to_numpy(),
            "source": sources,
        },
        index=pd.Index([f"condition{i}" for i in range(len(table))]),
    )
    return AnnData(
        X=np.asarray(mean, dtype=np.float32),
        obs=obs,
        var=pd.DataFrame(index=pd.Index(genes)),
        layers={
            "lower": np.asarray(lower, dtype=np.float32),
            "upper": np.asarray(upper, dtype=np.float32),
            "sd": np.asarray(sd, dtype=np.float32),
        },
        uns={"interval": interval},
    )
