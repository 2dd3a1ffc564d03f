"""Dose-response curves of :func:`celltwin.screen.dose_response`: effects, Hill fits, intervals.

Tables in, a matplotlib Figure out (no pyplot state), as in :mod:`celltwin.pl._figures`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..screen import DoseResponseResult, hill

__all__ = ["dose_curves"]

_POINT, _FIT, _BAND = "#1f5fa8", "#b42318", "#f3c6c2"


def dose_curves(
    result: DoseResponseResult,
    *,
    features: Sequence[str] | None = None,
    top: int = 6,
    columns: int = 3,
) -> Figure:
    """One panel per gene or pathway: predicted effect per dose, its Hill fit and intervals.

    Points are the predicted effects with the model's interval as error bars (where it gives
    one: ``transition`` gives none for a measured dose); the red line is the fitted Hill curve, the shaded span the EC50's
    interval and the dotted line the EC50, drawn only when the fit's status is ``ok`` (else the
    points are joined and the title says why there is no EC50). Each panel's title gives the feature, its status, R^2 and the EC50 with its interval.

    Parameters
    ----------
    result
        A :class:`celltwin.screen.DoseResponseResult`.
    features
        Features to draw (genes or pathways of ``result.fits``); default the pathways first,
        then the genes, each by the size of their fitted maximal effect, ``top`` in all.
    top
        Panels drawn when ``features`` is not given.
    columns
        Panels per row.
    """
    fits = result.fits.set_index("feature")
    if features is None:
        order = result.fits.assign(size=result.fits["top"].astype(float).abs())
        order = order.sort_values(["kind", "size"], ascending=[False, False])
        features = list(order["feature"].head(top))
    missing = [f for f in features if f not in fits.index]
    if missing:
        raise KeyError(f"'features': no fit for {missing}; fitted: {list(fits.index)[:10]}")
    if not features:
        raise ValueError("nothing to draw: the result has no fits")
    ncol = min(columns, len(features))
    nrow = math.ceil(len(features) / ncol)
    fig = Figure(figsize=(3.4 * ncol, 2.7 * nrow + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    doses = result.doses
    dense = np.logspace(np.log10(doses.min()) - 0.3, np.log10(doses.max()) + 0.3, 200)
    for ax, feature in zip(axes, features, strict=False):
        fit = fits.loc[feature]
        table = result.effects if fit["kind"] == "gene" else result.pathways
        assert table is not None
        column = table[:, feature]
        y = np.ravel(np.asarray(column.X, dtype=np.float64))
        lo = np.ravel(np.asarray(column.layers["lower"], dtype=np.float64))
        hi = np.ravel(np.asarray(column.layers["upper"], dtype=np.float64))
        _panel(ax, doses, dense, y, lo, hi, fit, name=str(feature))
    for ax in axes[len(features) :]:
        ax.set_visible(False)
    context = f" in {result.context}" if result.context else ""
    fig.suptitle(f"{result.drug}{context}: predicted dose-response", fontsize=11)
    return fig


def _panel(ax, doses, dense, y, lo, hi, fit, *, name: str) -> None:
    """One feature: points with intervals, the Hill curve, the EC50 and its interval."""
    ok = fit["status"] == "ok"
    known = np.isfinite(lo) & np.isfinite(hi)
    ax.plot(doses, y, "o", color=_POINT, ms=4)
    if known.any():
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])[:, known]
        ax.errorbar(doses[known], y[known], yerr=err, fmt="none", ecolor=_POINT, capsize=2, lw=1)
    ec50 = float(fit["ec50"]) if ok else float("nan")
    if ok:
        curve = hill(dense, top=float(fit["top"]), ec50=ec50, slope=float(fit["slope"]))
        ax.plot(dense, curve, color=_FIT, lw=1.5)
        low, high = float(fit["ec50_lower"]), float(fit["ec50_upper"])
        if np.isfinite(low) and np.isfinite(high):
            ax.axvspan(low, high, color=_BAND, alpha=0.6, lw=0)
        ax.axvline(ec50, color=_FIT, ls=":", lw=1)
    else:  # no curve to trust: the points joined, so the shape is seen
        ax.plot(doses, y, color=_POINT, lw=0.8, alpha=0.5)
    ax.axhline(0, color="#888", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("dose (uM)", fontsize=8)
    ax.set_ylabel("effect", fontsize=8)
    ax.tick_params(labelsize=7)
    kind = "" if fit["kind"] == "gene" else " (pathway)"
    detail = (
        f"EC50 {ec50:.3g} [{float(fit['ec50_lower']):.3g}, {float(fit['ec50_upper']):.3g}]"
        if ok
        else f"{fit['status']}: no EC50"
    )
    ax.set_title(f"{name}{kind}  R² {float(fit['r2']):.2f}\n{detail}", fontsize=8)
