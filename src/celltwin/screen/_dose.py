"""Dose-response: a drug's predicted effects over a dose grid, with Hill fits and intervals.

:func:`dose_response` predicts a drug at every dose of a grid in one call (a cell model
through :func:`celltwin.models.predict_effects`, or a dose-signature model of
:data:`celltwin.models.DOSE_MODELS`), scores pathways (PROGENy by default), and fits each
gene's and pathway's response with :func:`fit_hill`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.optimize import OptimizeWarning, curve_fit

from .._keys import CONTEXT, DOSE, IN_DOMAIN, PERTURBATION, PREDICTION_SOURCE
from ..models import DoseSignatureModel, Model, predict_effects
from ..priors import read_progeny

__all__ = ["HILL_COLUMNS", "DoseResponseResult", "dose_response", "fit_hill", "hill"]

#: Columns of :func:`fit_hill` (and of :attr:`DoseResponseResult.fits`, with ``feature`` and
#: ``kind`` first).
HILL_COLUMNS = (
    "top", "ec50", "slope", "r2", "status",
    "top_lower", "top_upper", "ec50_lower", "ec50_upper", "slope_lower", "slope_upper",
)  # fmt: skip

_SLOPES = (0.3, 10.0)  # bounds of the Hill slope
_DECADES = 2.0  # EC50 searched this many decades beyond the grid on each side


def hill(doses: np.ndarray, *, top: float, ec50: float, slope: float) -> np.ndarray:
    """The Hill curve with bottom 0: ``top * d**slope / (ec50**slope + d**slope)``.

    Parameters
    ----------
    doses
        Doses (>= 0; the curve is 0 at dose 0).
    top, ec50, slope
        Maximal effect (signed), the dose of half of it (same unit as ``doses``), Hill slope.

    Returns
    -------
    numpy.ndarray
        The effect at each dose.
    """
    d = np.asarray(doses, dtype=np.float64)
    return np.asarray(top / (1.0 + (ec50 / np.maximum(d, 1e-300)) ** slope), dtype=np.float64)


def _curve(x: np.ndarray, top: float, log_ec50: float, slope: float) -> np.ndarray:
    """:func:`hill` in ``log10`` dose (what is fitted)."""
    return np.asarray(top / (1.0 + 10.0 ** (slope * (log_ec50 - x))), dtype=np.float64)


def _grid(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The best ``(top, log_ec50, slope)`` of each row of ``ys`` on a grid of shapes.

    Every (EC50, slope) of a fine grid (EC50 within two decades of the doses, 0.05 decades
    apart; 24 slopes in [0.3, 10]) with its least-squares ``top``: vectorised over the rows,
    so many responses (the refits of the intervals) cost one matrix product.
    """
    lo, hi = x.min() - _DECADES, x.max() + _DECADES
    ee, kk = np.meshgrid(np.arange(lo, hi + 1e-9, 0.05), np.geomspace(*_SLOPES, 24), indexing="ij")
    e, k = ee.ravel(), kk.ravel()
    shapes = 1.0 / (1.0 + 10.0 ** (k[:, None] * (e[:, None] - x[None, :])))  # (K, n)
    peak = np.maximum(np.abs(ys).max(axis=1, keepdims=True), 1e-12)
    top = np.clip((ys @ shapes.T) / (shapes**2).sum(axis=1), -4 * peak, 4 * peak)  # (S, K)
    sse = (
        (ys**2).sum(axis=1, keepdims=True)
        - 2 * top * (ys @ shapes.T)
        + top**2 * (shapes**2).sum(axis=1)
    )
    best = sse.argmin(axis=1)
    return np.column_stack([top[np.arange(len(ys)), best], e[best], k[best]])


def _refine(x: np.ndarray, y: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
    """Bounded least squares from ``start`` (curve_fit); the parameters and R^2 against 0."""
    peak = float(np.max(np.abs(y))) or 1.0
    lo, hi = x.min() - _DECADES, x.max() + _DECADES
    bounds = ([-4 * peak, lo, _SLOPES[0]], [4 * peak, hi, _SLOPES[1]])
    p0 = np.clip(start, bounds[0], bounds[1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            p, _ = curve_fit(_curve, x, y, p0=p0, bounds=bounds, maxfev=2000)
    except (RuntimeError, ValueError):
        p = p0
    p = np.asarray(p, dtype=np.float64)
    if ((_curve(x, *p) - y) ** 2).sum() > ((_curve(x, *p0) - y) ** 2).sum():
        p = p0
    total = float((y**2).sum())
    sse = float(((_curve(x, *p) - y) ** 2).sum())
    return p, (1.0 - sse / total) if total > 0 else float("nan")


def _status(x: np.ndarray, y: np.ndarray, params: np.ndarray, r2: float, *, min_effect: float,
            min_r2: float) -> str:  # fmt: skip
    """``flat``, ``non_monotone``, ``poor_fit``, ``above_range``, ``below_range`` or ``ok``."""
    peak = np.abs(y).max()
    if peak < min_effect or abs(params[0]) < min_effect:
        return "flat"
    z = np.sign(y[np.abs(y).argmax()]) * y
    running = np.maximum.accumulate(np.concatenate([[0.0], z]))[1:]
    if (running - z).max() > 0.5 * peak:
        return "non_monotone"
    if not r2 >= min_r2:
        return "poor_fit"
    if params[1] > x.max():
        return "above_range"
    if params[1] < x.min():
        return "below_range"
    return "ok"


def fit_hill(
    doses: Sequence[float] | np.ndarray,
    response: Sequence[float] | np.ndarray,
    *,
    lower: Sequence[float] | np.ndarray | None = None,
    upper: Sequence[float] | np.ndarray | None = None,
    n_samples: int = 50,
    min_effect: float = 0.1,
    min_r2: float = 0.5,
    seed: int = 0,
) -> pd.Series:
    """Fit a Hill curve with bottom 0 to a response over positive doses, with intervals.

    ``response(d) = top * d**slope / (ec50**slope + d**slope)``: 0 effect at dose 0, ``top``
    (signed) the maximal effect, ``ec50`` the dose of half of it, ``slope`` the Hill
    coefficient. Fitted by bounded least squares in ``log10`` dose
    (:func:`scipy.optimize.curve_fit`; ``|top| <= 4 max|response|``, ``log10 ec50`` within two
    decades of the grid, ``slope`` in [0.3, 10]) from the best point of a fine grid of shapes
    (a local optimiser alone stalls on the flat EC50 axis far from the data).

    Intervals (5th-95th percentiles): refits on ``n_samples`` responses drawn uniformly within
    ``[lower, upper]`` per dose when given (the model's intervals; a dose whose bounds are NaN,
    such as a measured one, keeps its value), else, when no dose has bounds, on the fitted
    curve plus resampled residuals (a residual bootstrap).

    ``status`` says whether an EC50 can be read at all: ``flat`` (no dose moves the response
    by ``min_effect``), ``non_monotone`` (the response falls back by more than half its peak
    after reaching it), ``poor_fit`` (``r2 < min_r2``), ``above_range`` (the EC50 lies above
    the highest dose: the plateau is not reached, ``top`` is an extrapolation),
    ``below_range`` (the EC50 lies below the lowest dose: the response is saturated across the
    grid) or ``ok``.
    ``ec50``, ``slope`` and their intervals are given only when the status is ``ok``; ``top``
    always.

    Parameters
    ----------
    doses
        Positive doses (any unit; ``ec50`` is in the same unit).
    response
        Effect at each dose.
    lower, upper
        Optional per-dose interval of the response.
    n_samples
        Refits for the intervals (0: none).
    min_effect
        Smallest effect that counts as a response (units of ``response``).
    min_r2
        Smallest R^2 (against a zero response) for an EC50.
    seed
        Seed of the draws.

    Returns
    -------
    pandas.Series
        :data:`HILL_COLUMNS`.

    Examples
    --------
    >>> doses = np.array([0.01, 0.1, 1.0, 10.0, 100.0])
    >>> fit = fit_hill(doses, hill(doses, top=2.0, ec50=1.0, slope=1.0))
    >>> round(fit["ec50"], 3), round(fit["top"], 3), fit["status"]
    (1.0, 2.0, 'ok')
    """
    d = np.asarray(doses, dtype=np.float64)
    y = np.asarray(response, dtype=np.float64)
    if d.ndim != 1 or d.shape != y.shape or d.size < 3:
        raise ValueError(
            f"doses and response must be 1-D of one length >= 3 (got {d.shape}, {y.shape})"
        )
    if not (np.isfinite(d).all() and (d > 0).all() and np.isfinite(y).all()):
        raise ValueError("doses must be positive and finite and response finite")
    x = np.log10(d)
    params, r2 = _refine(x, y, _grid(x, y[None])[0])
    status = _status(x, y, params, r2, min_effect=min_effect, min_r2=min_r2)
    samples = _sample(x, y, params, lower, upper, n_samples=n_samples, seed=seed)
    starts = _grid(x, samples) if len(samples) else np.empty((0, 3))
    refits = np.array([_refine(x, s, p)[0] for s, p in zip(samples, starts, strict=True)])
    refits = refits.reshape(-1, 3)
    q = np.percentile(refits, [5, 95], axis=0) if len(refits) else np.full((2, 3), np.nan)
    ok = status == "ok"
    nan = float("nan")
    return pd.Series(
        {
            "top": float(params[0]),
            "ec50": float(10.0 ** params[1]) if ok else nan,
            "slope": float(params[2]) if ok else nan,
            "r2": float(r2),
            "status": status,
            "top_lower": float(q[0, 0]),
            "top_upper": float(q[1, 0]),
            "ec50_lower": float(10.0 ** q[0, 1]) if ok else nan,
            "ec50_upper": float(10.0 ** q[1, 1]) if ok else nan,
            "slope_lower": float(q[0, 2]) if ok else nan,
            "slope_upper": float(q[1, 2]) if ok else nan,
        },
        dtype=object,
    )


def _sample(x: np.ndarray, y: np.ndarray, params: np.ndarray, lower: object, upper: object, *,
            n_samples: int, seed: int) -> np.ndarray:  # fmt: skip
    """Responses to refit: uniform within the intervals, or a residual bootstrap."""
    rng = np.random.default_rng(seed)
    if n_samples <= 0:
        return np.empty((0, y.size))
    if lower is not None and upper is not None:
        lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        known = np.isfinite(lo) & np.isfinite(hi)
        if known.any():  # a dose without an interval (e.g. a measured one) keeps its value
            lo, hi = np.where(known, lo, y), np.where(known, hi, y)
            return np.asarray(lo + (hi - lo) * rng.random((n_samples, y.size)))
    fitted = _curve(x, *params)
    resid = y - fitted
    return np.asarray(fitted + rng.choice(resid, size=(n_samples, y.size), replace=True))


@dataclass(frozen=True)
class DoseResponseResult:
    """A drug's predicted response over a dose grid in one context.

    Attributes
    ----------
    drug, context
        What was predicted.
    effects
        Doses x genes: ``X`` the predicted effect, layers ``lower``/``upper`` (NaN when the
        model gives no intervals); obs ``dose`` (float, the grid's unit), ``in_domain`` and
        ``prediction_source``.
    pathways
        Doses x pathway scores (same layout), or ``None``.
    fits
        One row per fitted gene and pathway: ``feature``, ``kind`` (``"gene"`` or
        ``"pathway"``) and :data:`HILL_COLUMNS`.
    """

    drug: str
    context: str
    effects: AnnData
    pathways: AnnData | None
    fits: pd.DataFrame

    @property
    def doses(self) -> np.ndarray:
        """The dose grid."""
        return np.asarray(self.effects.obs[DOSE], dtype=np.float64)


def dose_response(
    model: Model | DoseSignatureModel,
    adata: AnnData | None,
    *,
    drug: str,
    doses: Sequence[float],
    context: str = "",
    genes: Sequence[str] | None = None,
    pathways: Sequence[str] | pd.DataFrame | None = None,
    n_genes: int = 20,
    n_samples: int = 50,
    min_effect: float = 0.1,
    seed: int = 0,
) -> DoseResponseResult:
    """Predict ``drug`` over a dose grid and fit a Hill curve per gene and pathway score.

    Parameters
    ----------
    model
        A fitted cell model (e.g. ``transition``; doses are passed as strings in micromolar,
        ``obs['dose']``) or a dose-signature model (:data:`celltwin.models.DOSE_MODELS`, no
        context).
    adata
        Control cells of ``context`` (``None`` for models that predict without cells).
    drug
        The drug (a perturbation label).
    doses
        Positive doses in micromolar, at least three.
    context
        The context of the predictions (ignored by dose-signature models).
    genes
        Genes to fit; default the ``n_genes`` genes with the largest mean absolute predicted
        change over the grid (the mean, not the maximum: one noisy dose does not pick a gene).
    pathways
        Pathway scores to fit: PROGENy pathway names (:func:`celltwin.priors.read_progeny`),
        or a table with columns ``pathway``, ``gene``, ``weight``. A score is the weighted mean
        ``sum(w * effect) / sum(|w|)`` over the pathway's genes the model predicts; its
        interval the same sum over each gene's bound in the weight's direction.
    n_genes
        Genes fitted when ``genes`` is ``None``.
    n_samples, min_effect
        As in :func:`fit_hill` (``min_effect`` in the model's units: log1p expression for cell
        models, z-scores for LINCS signatures).
    seed
        Seed of generated cells and of the interval draws.

    Returns
    -------
    DoseResponseResult
    """
    grid = np.asarray(doses, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 3 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise ValueError(f"'doses' must be at least three positive doses (got {list(doses)!r})")
    grid = np.unique(grid)
    effects = _predict(model, adata, drug=str(drug), grid=grid, context=str(context), seed=seed)
    chosen = _genes(effects, genes, n_genes)
    scores = None if pathways is None else _pathway_scores(effects, pathways)
    rows = []
    for kind, table, features in (("gene", effects, chosen),
                                  ("pathway", scores, [] if scores is None else list(scores.var_names))):  # fmt: skip
        for feature in features:
            col = table[:, feature]  # type: ignore[index]
            fit = fit_hill(grid, np.ravel(col.X), lower=np.ravel(col.layers["lower"]),
                           upper=np.ravel(col.layers["upper"]), n_samples=n_samples,
                           min_effect=min_effect, seed=seed)  # fmt: skip
            rows.append({"feature": feature, "kind": kind, **fit.to_dict()})
    fits = pd.DataFrame(rows, columns=["feature", "kind", *HILL_COLUMNS])
    return DoseResponseResult(str(drug), str(context), effects, scores, fits)


def _predict(model: object, adata: AnnData | None, *, drug: str, grid: np.ndarray, context: str,
             seed: int) -> AnnData:  # fmt: skip
    """Doses x genes effects with intervals, obs ``dose`` as floats."""
    labels = [f"{d:g}" for d in grid]
    if isinstance(model, DoseSignatureModel):
        x = model.predict(conditions=pd.DataFrame({PERTURBATION: drug, DOSE: labels}))
        nan = np.full(x.shape, np.nan, dtype=np.float32)
        effects = AnnData(np.asarray(x, dtype=np.float32), var=pd.DataFrame(index=model.genes_),
                          layers={"lower": nan, "upper": nan.copy()})  # fmt: skip
        effects.obs[IN_DOMAIN], effects.obs[PREDICTION_SOURCE] = np.nan, ""
    else:
        conditions = pd.DataFrame({CONTEXT: context, PERTURBATION: drug, DOSE: labels})
        effects = predict_effects(model, adata, conditions=conditions, seed=seed)  # type: ignore[arg-type]
    effects.obs_names = pd.Index(labels)
    effects.obs[DOSE] = grid
    return effects


def _genes(effects: AnnData, genes: Sequence[str] | None, n_genes: int) -> list[str]:
    if genes is None:
        change = np.abs(np.asarray(effects.X)).mean(axis=0)
        order = np.argsort(-change, kind="stable")[:n_genes]
        return [str(effects.var_names[i]) for i in order]
    missing = [g for g in genes if g not in effects.var_names]
    if missing:
        raise KeyError(f"'genes': the model does not predict {missing[:5]} ({len(missing)} genes)")
    return [str(g) for g in genes]


def _pathway_scores(effects: AnnData, pathways: Sequence[str] | pd.DataFrame) -> AnnData:
    """Weighted mean effect of each pathway's genes, with its interval."""
    if isinstance(pathways, pd.DataFrame):
        table = pathways
    else:
        table = read_progeny()
        unknown = sorted(set(pathways) - set(table["pathway"]))
        if unknown:
            raise KeyError(
                f"'pathways': no PROGENy pathway {unknown}; known: {sorted(set(table['pathway']))}"
            )
        table = table[table["pathway"].isin(list(pathways))]
    table = table[table["gene"].isin(effects.var_names)]
    if table.empty:
        raise ValueError("'pathways': none of the pathways' genes is among the model's genes")
    names = sorted(table["pathway"].unique())
    weights = np.zeros((effects.n_vars, len(names)))
    cols = {n: i for i, n in enumerate(names)}
    rows = effects.var_names.get_indexer(table["gene"])
    np.add.at(
        weights, (rows, table["pathway"].map(cols).to_numpy()), table["weight"].to_numpy(float)
    )
    weights /= np.abs(weights).sum(axis=0, keepdims=True)
    x, lo, hi = (
        np.asarray(a, dtype=np.float64)
        for a in (effects.X, effects.layers["lower"], effects.layers["upper"])
    )
    pos, neg = np.clip(weights, 0, None), np.clip(weights, None, 0)
    with np.errstate(invalid="ignore"):
        lower, upper = lo @ pos + hi @ neg, hi @ pos + lo @ neg
    return AnnData(x @ weights, obs=effects.obs.copy(), var=pd.DataFrame(index=names),
                   layers={"lower": lower, "upper": upper})  # fmt: skip
