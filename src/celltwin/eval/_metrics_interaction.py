"""Interaction of combinations: recovery (partial correlation given the additive expectation)
and Norman et al. 2019's fit of a pair on its singles, with the GEARS interaction classes."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = ["GI_CLASSES", "interaction_class", "interaction_fit", "interaction_pearson"]


def _partial_pearson(
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> float:
    """Pearson r of ``x`` and ``y`` after removing from both their least-squares fit on ``[1, z]``.

    0 when nothing of ``x`` is left (a prediction with no interaction beyond the additive one
    recovers none). Not clipped to [-1, 1] (unlike :func:`_rowwise_pearson`).
    """
    design = np.column_stack([np.ones_like(z), z])

    def residual(v: NDArray[np.float64]) -> NDArray[np.float64]:
        fitted: NDArray[np.float64] = design @ np.linalg.lstsq(design, v, rcond=None)[0]
        return v - fitted

    rx, ry = residual(x), residual(y)
    # Below this, what is left is float32 rounding of the predicted cells, not an interaction.
    scale = max(float(np.linalg.norm(x)), float(np.linalg.norm(z)), 1e-12)
    if float(np.linalg.norm(rx)) <= 1e-5 * scale or not np.any(ry):
        return 0.0
    a, b = rx[None, :], ry[None, :]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.where(den > 0, np.einsum("ij,ij->i", a, b) / den, np.nan)[0])


def interaction_pearson(
    pred_interaction: ArrayLike, true_interaction: ArrayLike, *, additive: ArrayLike
) -> NDArray[np.float64]:
    """Recovery of each combination's interaction: partial Pearson r given the additive sum.

    For combination ``p`` (a row): ``pred_interaction`` is the predicted effect minus
    ``additive``, the sum of its parts' effects as the model has them; ``true_interaction`` is
    the true effect minus the true singles' effects (e.g.
    :attr:`celltwin.simulate.Simulation.interactions`). Both are freed of their least-squares
    fit on ``[1, additive]`` over the genes before correlating, so a prediction that merely
    shrinks (or scales) the sum of its parts scores 0, not the correlation that the simulator's
    mostly sub-additive interactions would give it. 0 when no interaction beyond ``additive``
    is predicted; NaN when a residual is constant. Higher is better, 1 is perfect.

    Parameters
    ----------
    pred_interaction, true_interaction, additive
        ``(P, G)`` (or ``(G,)`` for one combination) over the same genes.

    Returns
    -------
    ``(P,)`` float64.
    """
    x = np.atleast_2d(np.asarray(pred_interaction, dtype=np.float64))
    y = np.atleast_2d(np.asarray(true_interaction, dtype=np.float64))
    z = np.atleast_2d(np.asarray(additive, dtype=np.float64))
    if not x.shape == y.shape == z.shape:
        raise ValueError(
            "pred_interaction, true_interaction and additive must have the same shape "
            f"(combinations x genes); got {x.shape}, {y.shape} and {z.shape}"
        )
    return np.array([_partial_pearson(x[i], y[i], z[i]) for i in range(x.shape[0])])


def interval_coverage(
    true_effect: ArrayLike, *, lower: ArrayLike, upper: ArrayLike
) -> NDArray[np.float64]:
    """Share of genes whose true effect lies inside the predicted interval, per condition.

    The calibration check of a model's effect intervals: with a nominal 90% interval, a
    well-calibrated model covers about 0.9 of the genes of a held-out condition.

    Parameters
    ----------
    true_effect, lower, upper
        ``(P, G)`` (or ``(G,)`` for one condition) over the same genes: the true effect (held-out
        mean minus the control mean) and the interval's bounds, ends included.

    Returns
    -------
    ``(P,)`` float64 in [0, 1].
    """
    t = np.atleast_2d(np.asarray(true_effect, dtype=np.float64))
    lo = np.atleast_2d(np.asarray(lower, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(upper, dtype=np.float64))
    if not t.shape == lo.shape == hi.shape:
        raise ValueError(
            "true_effect, lower and upper must have the same shape (conditions x genes); got "
            f"{t.shape}, {lo.shape} and {hi.shape}"
        )
    return np.asarray(((t >= lo) & (t <= hi)).mean(axis=1), dtype=np.float64)


# --- Norman 2019 / GEARS: the fit of a pair on its singles --------------------------------------

#: The interaction classes of GEARS (Roohani et al. 2023, Fig. 4), as spelled in its lists.
GI_CLASSES: tuple[str, ...] = (
    "ADDITIVE",
    "EPISTASIS",
    "NEOMORPHIC",
    "POTENTIATION",
    "REDUNDANT",
    "SUPPRESSOR",
    "SYNERGY_DISSIMILAR_PHENO",
    "SYNERGY_SIMILAR_PHENO",
)


def _dcor(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Distance correlation (Szekely 2007; the biased V-statistic) of the rows of ``x`` and ``y``.

    ``x``, ``y``: ``(n, p)`` and ``(n, q)``; the observations are the rows (here: genes).
    """

    def centred(v: NDArray[np.float64]) -> NDArray[np.float64]:
        d = np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(axis=-1))
        out: NDArray[np.float64] = (
            d - d.mean(axis=0, keepdims=True) - d.mean(axis=1, keepdims=True) + d.mean()
        )
        return out

    a, b = centred(x), centred(y)
    dcov, vx, vy = (a * b).mean(), (a * a).mean(), (b * b).mean()
    if vx <= 0 or vy <= 0:
        return float("nan")
    return float(np.sqrt(max(dcov, 0.0) / np.sqrt(vx * vy)))


def _spatial_median(
    points: NDArray[np.float64], *, max_iter: int, tol: float
) -> NDArray[np.float64]:
    """Weiszfeld's iteration for the point minimising the summed distances to ``points``."""
    y = points.mean(axis=0)
    for _ in range(max_iter):
        dist = np.sqrt(((points - y) ** 2).sum(axis=1))
        near = dist < 1e-12
        w = 1.0 / np.where(near, 1.0, dist)
        w[near] = 0.0
        if not w.any():
            return y
        new = (points * w[:, None]).sum(axis=0) / w.sum()
        if np.sqrt(((new - y) ** 2).sum()) < tol:
            return new
        y = new
    return y


def _ols(singles: NDArray[np.float64], pair: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(np.linalg.lstsq(singles, pair, rcond=None)[0], dtype=np.float64)


def _theil_sen(
    singles: NDArray[np.float64], pair: NDArray[np.float64], *, max_subsets: int, seed: int
) -> NDArray[np.float64]:
    """Theil-Sen without intercept for two regressors, vectorised.

    As scikit-learn's ``TheilSenRegressor(fit_intercept=False)``: the exact solutions of every
    subset of two genes (or ``max_subsets`` random ones when there are more), then their spatial
    median. Subsets whose 2 x 2 system is singular are left out.
    """
    n = pair.size
    if n * (n - 1) // 2 <= max_subsets:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_subsets)
        j = rng.integers(0, n - 1, max_subsets)
        j = j + (j >= i)
    a, b = singles[i], singles[j]
    det = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    ok = np.abs(det) > 1e-12 * np.maximum(np.abs(a).max(axis=1) * np.abs(b).max(axis=1), 1e-300)
    if not ok.any():
        return _ols(singles, pair)
    yi, yj, a, b, det = pair[i][ok], pair[j][ok], a[ok], b[ok], det[ok]
    c1 = (yi * b[:, 1] - a[:, 1] * yj) / det
    c2 = (a[:, 0] * yj - b[:, 0] * yi) / det
    return _spatial_median(np.column_stack([c1, c2]), max_iter=1000, tol=1e-6)


def _coefficients(
    singles: NDArray[np.float64], pair: NDArray[np.float64], method: str, seed: int
) -> NDArray[np.float64]:
    """``(c1, c2)`` of ``pair ~ c1 * first + c2 * second`` (no intercept)."""
    if method == "ols":
        return _ols(singles, pair)
    # Norman's and GEARS's setting: at most 100,000 subsets.
    return _theil_sen(singles, pair, max_subsets=100_000, seed=seed)


def interaction_fit(
    pair: ArrayLike,
    singles: ArrayLike,
    *,
    method: Literal["theil_sen", "ols"] = "theil_sen",
    seed: int = 1000,
) -> pd.Series:
    """Norman et al. 2019's fit of a pair's effect on its two singles' effects.

    The pair's effect (mean expression minus the control mean, over genes) is regressed on the
    singles' effects without intercept, ``pair ~ c1 * first + c2 * second``, robustly
    (Theil-Sen, as Norman's ``ts_coef_*`` and GEARS's ``get_coeffs``, which call scikit-learn's
    ``TheilSenRegressor``; here vectorised, with its own subset draw, so the coefficients agree
    with scikit-learn's to the spread of the subsampling, not to the bit). Measures, named as
    GEARS names them:

    ``c1``, ``c2``
        The coefficients.
    ``magnitude``
        ``sqrt(c1**2 + c2**2)`` (Norman's ``ts_norm``): above 1 the pair does more than its parts
        (synergy), below 1 less (suppression, buffering).
    ``model_fit``
        Pearson r of the fit ``c1 * first + c2 * second`` with the pair (GEARS's ``corr_fit``):
        low when the pair does something neither single does (neomorphic).
    ``dcor``
        Distance correlation of the singles (jointly) with the pair.
    ``dcor_singles``, ``dcor_first``, ``dcor_second``
        Distance correlation of the two singles, and of each single with the pair.
    ``dominance``
        ``|log10(|c1 / c2|)|``: large when one single dominates (epistasis).
    ``equality``
        ``min(dcor_first, dcor_second) / max(...)`` (GEARS's ``eq_contr``).

    Parameters
    ----------
    pair
        ``(G,)`` effect of the pair.
    singles
        ``(2, G)``: the effects of its first and second single, over the same genes.
    method
        ``"theil_sen"`` (default) or ``"ols"`` (least squares: fast, not robust).
    seed
        Seed of the Theil-Sen subsampling (GEARS uses 1000).

    Returns
    -------
    pandas.Series
        The measures above, float.

    Examples
    --------
    >>> a, b = np.random.default_rng(0).normal(size=(2, 100))
    >>> interaction_fit(0.7 * a + 0.3 * b, [a, b])[["c1", "c2"]].round(3).tolist()
    [0.7, 0.3]
    """
    p = np.asarray(pair, dtype=np.float64).ravel()
    both = np.asarray(singles, dtype=np.float64)
    if both.ndim != 2 or both.shape[0] != 2 or both.shape[1] != p.size:
        raise ValueError(
            f"singles must be the two singles' effects over the pair's {p.size} genes, shape "
            f"(2, {p.size}); got shape {both.shape}"
        )
    f, s = both
    if f.size < 3:
        raise ValueError(f"the fit needs at least 3 genes (got {f.size})")
    if method not in ("theil_sen", "ols"):
        raise ValueError(f"method must be 'theil_sen' or 'ols' (got {method!r})")
    singles = np.column_stack([f, s])
    c1, c2 = _coefficients(singles, p, method, seed)
    fitted = singles @ np.array([c1, c2])
    with np.errstate(invalid="ignore", divide="ignore"):
        model_fit = float(np.corrcoef(fitted, p)[0, 1]) if np.std(fitted) > 0 else float("nan")
        dominance = float(np.abs(np.log10(np.abs(c1 / c2))))
    d_first, d_second = _dcor(f[:, None], p[:, None]), _dcor(s[:, None], p[:, None])
    return pd.Series(
        {
            "c1": float(c1),
            "c2": float(c2),
            "magnitude": float(np.hypot(c1, c2)),
            "model_fit": model_fit,
            "dcor": _dcor(singles, p[:, None]),
            "dcor_singles": _dcor(f[:, None], s[:, None]),
            "dcor_first": d_first,
            "dcor_second": d_second,
            "dominance": dominance,
            "equality": min(d_first, d_second) / max(d_first, d_second),
        },
        dtype=np.float64,
    )


def interaction_class(fit: pd.Series | dict[str, float]) -> str:
    """The GEARS interaction class of a pair from its :func:`interaction_fit` measures.

    GEARS's ``get_coeffs`` computes the measures but ships no rule that names a class: its
    classes are lists of pairs picked from Norman's fits (``gears/inference.py``, ``GIs``). This
    decision list, read off the measures of the 88 pairs GEARS lists, reproduces 64 of their 88
    classes (73%) from Norman's own fits, applied in this order:

    1. ``EPISTASIS``: ``equality < 0.35`` (one single explains the pair, the other does not);
    2. ``REDUNDANT``: ``dcor_singles > 0.69`` and ``magnitude < 0.9`` (the singles do the same);
    3. ``NEOMORPHIC``: ``model_fit < 0.78`` and ``magnitude < 0.9`` (the pair is no mix of them);
    4. ``POTENTIATION``: ``magnitude >= 0.97`` and ``dcor_singles < 0.36``;
    5. ``SYNERGY_SIMILAR_PHENO`` / ``SYNERGY_DISSIMILAR_PHENO``: ``magnitude > 0.9``, split at
       ``dcor_singles > 0.58``;
    6. ``SUPPRESSOR``: ``magnitude < 0.63`` and ``dcor_singles < 0.3``;
    7. otherwise ``ADDITIVE``.

    Parameters
    ----------
    fit
        ``magnitude``, ``model_fit``, ``dcor_singles`` and ``equality`` at least.

    Returns
    -------
    str
        One of :data:`GI_CLASSES`.
    """
    missing = sorted({"magnitude", "model_fit", "dcor_singles", "equality"} - set(fit.keys()))
    if missing:
        raise KeyError(f"interaction_class needs the measures {missing} of interaction_fit")
    mag, fit_r = float(fit["magnitude"]), float(fit["model_fit"])
    singles, equality = float(fit["dcor_singles"]), float(fit["equality"])
    rules: tuple[tuple[bool, str], ...] = (
        (equality < 0.35, "EPISTASIS"),
        (singles > 0.69 and mag < 0.9, "REDUNDANT"),
        (fit_r < 0.78 and mag < 0.9, "NEOMORPHIC"),
        (mag >= 0.97 and singles < 0.36, "POTENTIATION"),
        (mag > 0.9 and singles > 0.58, "SYNERGY_SIMILAR_PHENO"),
        (mag > 0.9, "SYNERGY_DISSIMILAR_PHENO"),
        (mag < 0.63 and singles < 0.3, "SUPPRESSOR"),
    )
    return next((name for hit, name in rules if hit), "ADDITIVE")
