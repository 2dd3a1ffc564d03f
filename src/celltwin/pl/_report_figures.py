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
from ..eval import METRICS
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


#: Below this many values per model a panel shows each value as a dot, not a histogram.
STRIP_BELOW = 10
_LEGEND_ROW_IN = 0.22


def _legend_layout(labels: Sequence[str], width_in: float) -> tuple[int, int]:
    """Columns and rows of a legend of ``labels`` that fits ``width_in`` inches (font size 8)."""
    if not labels:
        return 1, 0
    entry = max(0.45 + 0.075 * len(label) for label in labels)
    ncols = max(1, min(len(labels), int(width_in // entry)))
    return ncols, math.ceil(len(labels) / ncols)


def _grid(
    nrows: int,
    ncols: int,
    *,
    width: float,
    height: float,
    wspace: float,
    hspace: float,
    legend_rows: int = 0,
) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows x ncols`` panels with fixed margins (room for ``legend_rows`` on top).

    Fixed margins instead of constrained layout: that solver redraws the figure several times,
    which dominated the report's rendering time.
    """
    top_in, bottom_in, left_in, right_in = 0.4 + _LEGEND_ROW_IN * legend_rows, 0.55, 0.75, 0.2
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


def _legend(fig: Figure, handles: Mapping[str, Artist], *, ncols: int) -> None:
    """The figure's legend, in the band :func:`_grid` reserved on top (inside the figure)."""
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles.keys()),
            loc="upper center",
            bbox_to_anchor=(0.5, 1.0),
            ncols=ncols,
            frameon=False,
            fontsize=8,
        )


def _legend_labels(models: Mapping[str, Tables], metrics: Sequence[str]) -> list[str]:
    """What the distributions' legend will name: the models, baselines and the ceiling."""
    baselines = reference_rows(models, "baseline")
    ceiling = reference_rows(models, "ceiling")
    labels = list(models)
    base = baselines[baselines["metric"].isin(metrics)]
    labels += [f"baseline: {b}" for b in dict.fromkeys(base["source"].astype(str))]
    if ceiling["metric"].isin(metrics).any():
        labels.append("ceiling")
    return labels


def _finite_metrics(models: Mapping[str, Tables], names: Sequence[str]) -> list[str]:
    """The metrics of ``names`` with at least one finite value (no empty panels)."""
    keep = []
    for metric in names:
        for t in models.values():
            values = t["metrics"].loc[t["metrics"]["metric"] == metric, "value"]
            if np.isfinite(values.to_numpy(float)).any():
                keep.append(metric)
                break
    return keep


def _bounds(metric: str) -> tuple[float | None, float | None]:
    """``(upper, lower)`` bounds of a metric's values (None where unbounded or unknown)."""
    if "/" in metric:  # fractions of the ceiling may exceed 1
        return None, None
    base = metric.split("[", 1)[0]
    if "coverage" in base:
        return 1.0, 0.0
    registered = METRICS.get(base)
    if registered is None or registered.best is None:
        return None, None
    return (registered.best, None) if registered.higher_is_better else (None, registered.best)


def _limits(metric: str, values: Sequence[float]) -> tuple[float, float]:
    """The axis range of a metric: its values with a margin, cut at the metric's bounds."""
    lo, hi = float(min(values)), float(max(values))
    pad = 0.08 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 0.5)
    lo, hi = lo - pad, hi + pad
    upper, lower = _bounds(metric)
    if upper is not None and max(values) <= upper:
        hi = min(hi, upper)
    if lower is not None and min(values) >= lower:
        lo = max(lo, lower)
    return lo, hi


def metric_distributions(
    models: Mapping[str, Tables], *, metrics: Sequence[str] | None = None, ncols: int = 4
) -> Figure:
    """Per-perturbation values, one panel per metric, models overlaid.

    Histograms when a model has :data:`STRIP_BELOW` values or more, else one dot per value
    (a strip plot, the model's mean as a bar). Baseline means are dashed vertical lines, the
    ceiling mean a solid green one. Metrics without a finite value are left out.
    """
    check_tables(models)
    names = _finite_metrics(models, list(metrics) if metrics is not None else metric_order(models))
    baselines = reference_rows(models, "baseline")
    ceiling = reference_rows(models, "ceiling")
    directions = metric_directions(models)
    ncols = max(1, min(ncols, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    width = 3.3
    legend_cols, legend_rows = _legend_layout(_legend_labels(models, names), width * ncols + 0.9)
    fig, axes = _grid(
        nrows, ncols, width=width, height=2.3, wspace=0.3, hspace=0.6, legend_rows=legend_rows
    )
    handles: dict[str, Artist | None] = {}
    for ax, metric in zip(axes, names, strict=False):
        per_model = {
            model: t["metrics"].loc[t["metrics"]["metric"] == metric, "value"].to_numpy(float)
            for model, t in models.items()
        }
        per_model = {m: v[np.isfinite(v)] for m, v in per_model.items()}
        lines = (baselines[baselines["metric"] == metric], ceiling[ceiling["metric"] == metric])
        refs = [float(v) for f in lines for v in f["mean"].to_numpy(float) if math.isfinite(v)]
        pooled = [float(v) for vals in per_model.values() for v in vals]
        ax.set_title(f"{metric} {arrow(directions.get(metric))}".strip(), fontsize=9)
        ax.tick_params(labelsize=7)
        lo, hi = _limits(metric, pooled + refs)
        if max(v.size for v in per_model.values()) < STRIP_BELOW:
            _strips(ax, per_model, handles)
        else:
            bins = np.linspace(lo, hi, int(np.clip(np.sqrt(len(pooled)) * 2, 8, 40)) + 1)
            _histograms(ax, per_model, bins.tolist(), handles)
            ax.set_ylabel("perturbations", fontsize=7)
        _reference_lines(ax, *lines, handles)
        ax.set_xlim(lo, hi)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    _legend(fig, {k: v for k, v in handles.items() if v is not None}, ncols=legend_cols)
    return fig


def _strips(
    ax: Axes, per_model: Mapping[str, np.ndarray], handles: dict[str, Artist | None]
) -> None:
    """Each model's values as dots on its own row, its mean as a short bar."""
    n = len(per_model)
    for i, (model, values) in enumerate(per_model.items()):
        color = _COLORS[i % len(_COLORS)]
        y = n - 1 - i
        offsets = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else 0 * values
        dots = ax.scatter(values, y + offsets, s=22, color=color, zorder=3, clip_on=False)
        if values.size:
            ax.plot([values.mean()] * 2, [y - 0.3, y + 0.3], color=color, lw=2.0, zorder=2)
        handles.setdefault(model, dots)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(range(n), [""] * n)
    ax.tick_params(axis="y", length=0)
    sizes = sorted({v.size for v in per_model.values() if v.size})
    each = f"{sizes[0]} each" if len(sizes) == 1 else "values"
    ax.set_ylabel(f"perturbations ({each})", fontsize=7)


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


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (a panel title that fits)."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


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
    width = 2.2 if ncols > 2 else 3.0  # one or two panels: larger, and room for the legend
    labels = list(with_deltas) if len(with_deltas) > 1 else []
    legend_cols, legend_rows = _legend_layout(labels, width * ncols + 0.9)
    fig, axes = _grid(
        nrows, ncols, width=width, height=2.2, wspace=0.35, hspace=0.5, legend_rows=legend_rows
    )
    indexed = {m: d.set_index(keys).sort_index() for m, d in with_deltas.items()}
    for ax, key in zip(axes, chosen, strict=False):
        title = _scatter_title(dict(zip(keys, key, strict=True)), n_contexts)
        ax.set_title(_shorten(title, int(width * 14)), fontsize=8)
        ax.tick_params(labelsize=6)
        # Few ticks: each tick label is a text to lay out, the bulk of the drawing time.
        ax.locator_params(nbins=3)
        _scatter_panel(ax, key, indexed)
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    fig.supxlabel("true delta (log1p)", fontsize=8)
    fig.supylabel("predicted delta (log1p)", fontsize=8)
    handles: dict[str, Artist] = {}
    for ax in axes[: len(chosen)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if labels:
        _legend(fig, handles, ncols=legend_cols)
    return fig
