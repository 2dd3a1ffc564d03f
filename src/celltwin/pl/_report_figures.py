"""The report's figures: metric distributions and predicted vs true changes, as inline SVG.

Drawn with matplotlib's object API (no pyplot state) from the tables of
:mod:`celltwin.pl._report`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._keys import CONTEXT, PERTURBATION
from ._report_tables import (
    _KEY_ORDER,
    Tables,
    arrow,
    check_tables,
    key_columns,
    metric_directions,
    metric_order,
    reference_rows,
)

_COLORS = ("#1f77b4", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_BASELINE_STYLE = {"control": ("#7f7f7f", "--"), "mean": ("#ff7f0e", "--")}
_CEILING_COLOR = "#2ca02c"


def figure_svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (text kept as text, no XML prologue)."""
    buffer = io.StringIO()
    # A scoped setting, not pyplot state: text stays text (smaller, selectable).
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _grid(
    nrows: int, ncols: int, *, width: float, height: float, wspace: float, hspace: float
) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows x ncols`` panels with fixed margins (room for a legend on top).

    Fixed margins instead of constrained layout: that solver redraws the figure several times,
    which dominated the report's rendering time.
    """
    top_in, bottom_in, left_in, right_in = 0.55, 0.55, 0.6, 0.15
    fig_w = width * ncols + left_in + right_in
    fig_h = height * nrows + top_in + bottom_in
    fig = Figure(figsize=(fig_w, fig_h))
    fig.subplots_adjust(
        left=left_in / fig_w,
        right=1 - right_in / fig_w,
        bottom=bottom_in / fig_h,
        top=1 - top_in / fig_h,
        wspace=wspace,
        hspace=hspace,
    )
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    return fig, axes


def metric_distributions(
    models: Mapping[str, Tables], *, metrics: Sequence[str] | None = None, ncols: int = 4
) -> Figure:
    """Histograms of per-perturbation values, one panel per metric, models overlaid.

    Baseline means are dashed vertical lines, the ceiling mean a solid green one.
    """
    check_tables(models)
    names = list(metrics) if metrics is not None else metric_order(models)
    baselines = reference_rows(models, "baseline")
    ceiling = reference_rows(models, "ceiling")
    directions = metric_directions(models)
    ncols = max(1, min(ncols, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = _grid(nrows, ncols, width=3.3, height=2.5, wspace=0.3, hspace=0.55)
    handles: dict[str, Artist | None] = {}
    for ax, metric in zip(axes, names, strict=False):
        per_model = {
            model: t["metrics"].loc[t["metrics"]["metric"] == metric, "value"].to_numpy(float)
            for model, t in models.items()
        }
        finite = [v[np.isfinite(v)] for v in per_model.values()]
        pooled = np.concatenate(finite) if finite else np.empty(0)
        ref_values = [
            float(v)
            for v in np.concatenate(
                [
                    baselines.loc[baselines["metric"] == metric, "mean"].to_numpy(float),
                    ceiling.loc[ceiling["metric"] == metric, "mean"].to_numpy(float),
                ]
            )
            if math.isfinite(v)
        ]
        ax.set_title(f"{metric} {arrow(directions.get(metric))}".strip(), fontsize=9)
        ax.tick_params(labelsize=7)
        if pooled.size == 0:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
            continue
        lo = min(pooled.min(), *ref_values) if ref_values else pooled.min()
        hi = max(pooled.max(), *ref_values) if ref_values else pooled.max()
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, int(np.clip(np.sqrt(pooled.size) * 2, 8, 40)) + 1)
        _histograms(ax, per_model, bins.tolist(), handles)
        lines = (baselines[baselines["metric"] == metric], ceiling[ceiling["metric"] == metric])
        _reference_lines(ax, *lines, handles)
        ax.set_ylabel("perturbations", fontsize=7)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    shown = {k: v for k, v in handles.items() if v is not None}
    if shown:
        fig.legend(
            list(shown.values()),
            list(shown.keys()),
            loc="upper center",
            ncols=min(len(shown), 6),
            frameon=False,
            fontsize=8,
        )
    return fig


def _histograms(
    ax: Axes,
    per_model: Mapping[str, np.ndarray],
    bins: Sequence[float],
    handles: dict[str, Artist | None],
) -> None:
    """Each model's finite values, filled and outlined; its legend handle into ``handles``."""
    for i, (model, values) in enumerate(per_model.items()):
        values = values[np.isfinite(values)]
        color = _COLORS[i % len(_COLORS)]
        _, _, patches = ax.hist(values, bins=bins, color=color, alpha=0.35, histtype="stepfilled")
        ax.hist(values, bins=bins, color=color, histtype="step", linewidth=1.0)
        # "stepfilled" draws one polygon per data set: a list of polygons (artists).
        first = patches[0] if isinstance(patches, list) and patches else None
        handles.setdefault(model, first if isinstance(first, Artist) else None)


def _reference_lines(
    ax: Axes, baselines: pd.DataFrame, ceiling: pd.DataFrame, handles: dict[str, Artist | None]
) -> None:
    """Baseline means (dashed) and the ceiling mean (solid green) of one metric."""
    for _, row in baselines.iterrows():
        color, style = _BASELINE_STYLE.get(str(row["source"]), ("#444444", ":"))
        if math.isfinite(float(row["mean"])):
            line = ax.axvline(float(row["mean"]), color=color, linestyle=style, linewidth=1.4)
            handles.setdefault(f"baseline: {row['source']}", line)
    for _, row in ceiling.iterrows():
        if math.isfinite(float(row["mean"])):
            line = ax.axvline(float(row["mean"]), color=_CEILING_COLOR, linewidth=1.6)
            handles.setdefault("ceiling", line)


def _scatter_keys(deltas: pd.DataFrame, max_perturbations: int) -> list[tuple]:
    """The perturbations with the largest true effect on their top genes, largest first."""
    keys = [c for c in key_columns(deltas) if c not in ("gene", "true_delta", "pred_delta")]
    strength = deltas.assign(_abs=deltas["true_delta"].abs()).groupby(keys, sort=True)["_abs"].sum()
    top = strength.sort_values(ascending=False, kind="stable").index[:max_perturbations]
    return [k if isinstance(k, tuple) else (k,) for k in top]


def _scatter_title(label: Mapping[str, Any], n_contexts: int) -> str:
    """``perturbation · context (dose)``; the context only when there are several."""
    title = str(label[PERTURBATION])
    if n_contexts > 1:
        title += f" · {label[CONTEXT]}"
    extras = [str(v) for k, v in label.items() if k not in _KEY_ORDER and str(v)]
    if extras:
        title += f" ({', '.join(extras)})"
    return title


def _scatter_panel(ax: Axes, key: tuple, indexed: Mapping[str, pd.DataFrame]) -> None:
    """Each model's predicted vs true deltas of one perturbation, with the diagonal."""
    lims = []
    for i, (model, frame) in enumerate(indexed.items()):
        if key not in frame.index:
            continue
        rows = frame.loc[[key]]
        x = rows["true_delta"].to_numpy(float)
        y = rows["pred_delta"].to_numpy(float)
        ax.scatter(x, y, s=9, color=_COLORS[i % len(_COLORS)], alpha=0.8, label=model)
        lims += [x.min(), x.max(), y.min(), y.max()]
    if lims:
        lo, hi = float(min(lims)), float(max(lims))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999", lw=0.8, zorder=0)
        ax.axhline(0, color="#dddddd", lw=0.6, zorder=0)
        ax.axvline(0, color="#dddddd", lw=0.6, zorder=0)


def delta_scatter(
    models: Mapping[str, Tables], *, max_perturbations: int = 24, ncols: int = 6
) -> Figure | None:
    """Predicted vs true change from control on each perturbation's top DE genes, a grid.

    At most ``max_perturbations`` panels, the perturbations with the largest true effects (taken
    from the first model's ``deltas``); models in colours, the diagonal in grey. None when no
    model has a ``deltas`` table.
    """
    check_tables(models)
    with_deltas = {
        m: t["deltas"] for m, t in models.items() if "deltas" in t and not t["deltas"].empty
    }
    if not with_deltas:
        return None
    first = next(iter(with_deltas.values()))
    keys = [c for c in key_columns(first) if c not in ("gene", "true_delta", "pred_delta")]
    chosen = _scatter_keys(first, max_perturbations)
    n_contexts = first[CONTEXT].nunique()
    ncols = max(1, min(ncols, len(chosen)))
    nrows = max(1, math.ceil(len(chosen) / ncols))
    fig, axes = _grid(nrows, ncols, width=2.2, height=2.2, wspace=0.35, hspace=0.45)
    indexed = {m: d.set_index(keys).sort_index() for m, d in with_deltas.items()}
    for ax, key in zip(axes, chosen, strict=False):
        ax.set_title(_scatter_title(dict(zip(keys, key, strict=True)), n_contexts), fontsize=8)
        ax.tick_params(labelsize=6)
        # Few ticks: each tick label is a text to lay out, the bulk of the drawing time.
        ax.locator_params(nbins=3)
        _scatter_panel(ax, key, indexed)
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    fig.supxlabel("true delta (log1p)", fontsize=8)
    fig.supylabel("predicted delta (log1p)", fontsize=8)
    if len(indexed) > 1:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="upper center",
            ncols=len(indexed),
            frameon=False,
            fontsize=8,
        )
    return fig
