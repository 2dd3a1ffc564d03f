"""A screen as a page: ranked bars with intervals and in-domain scores, a volcano of the top hit
and the table (:func:`screen_report`), and the virtual twin's populations (:func:`twin_figure`).

Reads any screen result (the engine's ``ScreenResult`` or :class:`celltwin.screen.TwinResult`):
``table`` with the screen's columns (``rank``, ``label``, ``score``, ``lower``, ``upper``,
``pvalue``, ``fdr``, ``in_domain``, ``prediction_source``, ``top_genes``, ...), ``effects``
(the top hits' effects with layers ``lower``/``upper``), ``objective``, ``context``, ``meta``.
Same style as the other reports: inline CSS and SVG, sortable table, no network.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.figure import Figure
from scipy.stats import norm

from .._output import check_output
from ..eval import fit_pca
from ..screen import POPULATION
from ._report import _CSS, _JS, _fmt, _header, _sort_value
from ._report_figures import figure_svg

__all__ = ["screen_report", "twin_figure", "write_screen"]

#: Below this in-domain score a prediction is an extrapolation (flagged on the page).
OUT_OF_DOMAIN = 0.05
_SHOWN = ("rank", "label", "score", "lower", "upper", "pvalue", "fdr", "in_domain",
          "prediction_source", "top_genes")  # fmt: skip
_PAGE_CSS = """
td.dom{font-weight:600}td.out{color:#b42318}td.mid{color:#9a6700}td.in{color:#1a7f37}
td.genes{text-align:left;white-space:normal;max-width:22em}dl.head{display:grid;
grid-template-columns:max-content auto;gap:2px 12px;font-size:13.5px}dl.head dt{color:#555}
dl.head dd{margin:0}
"""


class ScreenLike(Protocol):
    """What the page reads from a screen result (read-only: frozen results qualify)."""

    @property
    def table(self) -> pd.DataFrame: ...
    @property
    def effects(self) -> AnnData: ...
    @property
    def objective(self) -> Any: ...
    @property
    def context(self) -> str: ...
    @property
    def meta(self) -> dict[str, Any]: ...


def _domain_color(value: float) -> str:
    if not math.isfinite(value):
        return "#9e9e9e"
    return "#b42318" if value < OUT_OF_DOMAIN else ("#d4a72c" if value < 0.5 else "#1a7f37")


def score_bars(result: ScreenLike, *, top: int = 30) -> Figure:
    """Horizontal bars of the ``top`` best scores with their intervals, in-domain beside."""
    t = result.table.head(top)
    n = max(len(t), 1)
    longest = max((len(str(s)) for s in t["label"]), default=4)
    left = min(0.3 + 0.075 * longest, 3.5)
    fig = Figure(figsize=(left + 6.2, 0.9 + 0.24 * n))
    ax = fig.add_axes((left / (left + 6.2), 0.6 / (0.9 + 0.24 * n), 4.6 / (left + 6.2),
                       0.24 * n / (0.9 + 0.24 * n)))  # fmt: skip
    y = np.arange(len(t))
    score = t["score"].to_numpy(dtype=float)
    direction = getattr(result.objective, "direction", "higher")
    good = score >= 0 if direction == "higher" else score <= 0  # dark: the better side of 0
    colors = np.where(good, "#1f77b4", "#9bbcd9")
    ax.barh(y, score, color=colors, height=0.7)
    lo, hi = t["lower"].to_numpy(dtype=float), t["upper"].to_numpy(dtype=float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.hlines(y[ok], lo[ok], hi[ok], color="#333", lw=1)
    ax.scatter(np.r_[lo[ok], hi[ok]], np.r_[y[ok], y[ok]], marker="|", c="#333", s=20)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_yticks(y, [str(s) for s in t["label"]], fontsize=8)
    ax.set_ylim(len(t) - 0.5, -0.5)
    ax.set_xlabel(f"score ({direction} is better; bars: interval where the model gives one)")
    dom = fig.add_axes((ax.get_position().x1 + 0.01, ax.get_position().y0, 0.9 / (left + 6.2),
                        ax.get_position().height), sharey=ax)  # fmt: skip
    values = t["in_domain"].to_numpy(dtype=float) if "in_domain" in t else np.full(len(t), np.nan)
    dom.scatter(np.zeros(len(t)), y, c=[_domain_color(v) for v in values], s=40)
    for yi, v in zip(y, values, strict=True):
        dom.text(
            0.25, float(yi), "–" if not math.isfinite(v) else f"{v:.2f}", va="center", fontsize=7.5
        )
    dom.set_xlim(-0.4, 1.2)
    dom.set_xticks([])
    dom.set_title("in-domain", fontsize=8)
    dom.tick_params(left=False, labelleft=False)
    for side in ("top", "right", "bottom", "left"):
        dom.spines[side].set_visible(False)
    return fig


def volcano(result: ScreenLike, *, label: str | None = None, n_labels: int = 12) -> Figure:
    """Effect of each gene under one hit (default: the top hit) against its certainty.

    y is ``|effect| / sd`` with ``sd`` from the effect's interval (level ``meta['interval']``,
    0.9 when absent); without intervals, ``|effect|``. The genes with the largest y are named.
    """
    effects = result.effects
    label = str(result.table["label"].iloc[0]) if label is None else label
    row = list(effects.obs_names).index(label)
    x = np.asarray(effects.X[row], dtype=float).ravel()
    lo = np.asarray(effects.layers["lower"][row], dtype=float).ravel()
    hi = np.asarray(effects.layers["upper"][row], dtype=float).ravel()
    level = float(result.meta.get("interval") or 0.9)
    sd = (hi - lo) / (2.0 * norm.ppf(0.5 + level / 2.0))
    has_sd = bool(np.isfinite(sd).all() and (sd > 0).any())
    y = np.abs(x) / np.where(sd > 0, sd, np.nan) if has_sd else np.abs(x)
    y = np.nan_to_num(y, nan=0.0)
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_axes((0.12, 0.13, 0.84, 0.78))
    ax.scatter(x, y, s=8, c=np.where(x > 0, "#d62728", "#1f77b4"), alpha=0.6, lw=0)
    genes = np.asarray(effects.var_names)
    for i in np.argsort(-y)[:n_labels]:
        ax.annotate(str(genes[i]), (x[i], y[i]), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("predicted effect (log1p)")
    ax.set_ylabel("|effect| / sd" if has_sd else "|effect| (no intervals)")
    ax.set_title(f"{label}: predicted effect per gene", fontsize=10)
    ax.margins(x=0.12, y=0.08)
    return fig


def _twin_axes(x: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Cells on two axes: the line from the sample mean (0) to the reference mean (1), and the
    first principal component of sample + reference once that line is removed."""
    s, r = x[pop == "sample"].mean(axis=0), x[pop == "reference"].mean(axis=0)
    axis = r - s
    length = float(axis @ axis)
    along = (x - s) @ axis / length if length > 0 else np.zeros(len(x))
    rest = x - np.outer(along, axis)
    base = np.isin(pop, ["sample", "reference"])
    other = fit_pca(rest[base], n_components=1).transform(rest)[:, 0]
    return np.c_[along, other]


def twin_figure(result: Any, *, n_hits: int = 5) -> Figure:
    """Sample, reference and the top hits' predicted populations in one scatter.

    ``result.cells`` must have obs ``population`` (``sample``, ``reference`` and hit labels, as
    :func:`celltwin.screen.virtual_twin` returns). x: each cell's position along the line from
    the sample's mean (0) to the reference's (1), so a hit that moves the sample back sits near
    1; y: the first principal component of sample + reference cells off that line.
    """
    cells = getattr(result, "cells", None)
    if cells is None or POPULATION not in cells.obs:
        raise ValueError(
            f"twin_figure needs result.cells with obs '{POPULATION}' (sample, reference and "
            "hits), as celltwin.screen.virtual_twin returns"
        )
    pop = cells.obs[POPULATION].astype(str).to_numpy()
    x = np.asarray(cells.X.toarray() if hasattr(cells.X, "toarray") else cells.X, dtype=float)
    pcs = _twin_axes(x, pop)
    hits = [p for p in dict.fromkeys(pop) if p not in ("sample", "reference")][:n_hits]
    names = ["reference", "sample", *(f"{h} (hit {i + 1})" for i, h in enumerate(hits))]
    legend_in = 0.5 + 0.075 * max(len(n) for n in names)  # fontsize 8
    width = 0.8 + 4.6 + 0.15 + legend_in
    fig = Figure(figsize=(width, 5.2))
    ax = fig.add_axes((0.8 / width, 0.11, 4.6 / width, 0.8))
    palette = ("#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
    styles = [("reference", "#2ca02c", 14), ("sample", "#555555", 14)]
    styles += [(h, palette[i % len(palette)], 10) for i, h in enumerate(hits)]
    for name, color, size in styles:
        sel = pop == name
        ax.scatter(pcs[sel, 0], pcs[sel, 1], s=size, c=color, alpha=0.55, lw=0,
                   label=f"{name} (hit {hits.index(name) + 1})" if name in hits else name)  # fmt: skip
        centre = pcs[sel].mean(axis=0)
        ax.scatter(centre[0], centre[1], s=90, c=color, marker="X", edgecolors="k", lw=0.8)
    ax.set_xlabel("along the sample -> reference axis (0: sample mean, 1: reference mean)")
    ax.set_ylabel("PC1 of the rest (sample + reference)")
    ax.set_title(f"Virtual twin: {result.context} (X: population means)", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return fig


def _domain_class(value: object) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "dom"
    if not math.isfinite(v):
        return "dom"
    return "dom " + ("out" if v < OUT_OF_DOMAIN else ("mid" if v < 0.5 else "in"))


def _table_html(table: pd.DataFrame, max_rows: int) -> str:
    shown = table[[c for c in _SHOWN if c in table]].head(max_rows)
    numeric = {c for c in shown.columns if pd.api.types.is_numeric_dtype(shown[c])}
    head = "".join(
        f'<th data-type="{"num" if c in numeric else "str"}" title="click to sort">'
        f"{_header(str(c))}</th>"
        for c in shown.columns
    )
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for c, v in zip(shown.columns, row, strict=True):
            text = _fmt(v, 3) if c in numeric else html.escape(str(v)).replace(";", "; ")
            if c == "in_domain":
                flag = " (out)" if _domain_class(v).endswith("out") else ""
                cells.append(f'<td class="{_domain_class(v)}" data-v="{_sort_value(v)}">'
                             f"{text}{flag}</td>")  # fmt: skip
            else:
                cls = ' class="genes"' if c == "top_genes" else ""
                cells.append(f'<td{cls} data-v="{_sort_value(v)}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="notes">First {max_rows} of {len(table)} rows; all in the CSV/Parquet.</p>'
        if len(table) > max_rows
        else ""
    )
    return (f'<div class="scroll"><table id="screen" class="sortable"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table></div>{more}")  # fmt: skip


def _header_html(result: ScreenLike) -> str:
    obj = result.objective
    items = [
        ("objective", f"{getattr(obj, 'name', obj)} ({getattr(obj, 'direction', '?')} is better)"),
        ("what it scores", str(getattr(obj, "description", ""))),
        ("p-values against", str(getattr(obj, "null", "none"))),
        ("context", str(result.context)),
        ("candidates", str(len(result.table))),
    ]
    for key in ("model", "n_sample_cells", "n_reference_cells", "distance_before", "pairs"):
        if key in result.meta:
            items.append((key.replace("_", " "), _fmt(result.meta[key], 4)))
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f'<dl class="head">{rows}</dl>'


def screen_report(
    result: ScreenLike, *, title: str | None = None, top: int = 30, max_rows: int = 200
) -> str:
    """The self-contained HTML page of a screen (or a virtual twin).

    Parameters
    ----------
    result
        A screen result: the engine's ``ScreenResult`` or :class:`celltwin.screen.TwinResult`.
    title
        Page title; default ``"celltwin screen: <objective> in <context>"``.
    top
        Hits drawn as bars.
    max_rows
        Rows of the table shown (all are in the files the screen writes).
    """
    if result.table.empty:
        raise ValueError("the screen's table is empty: nothing to report")
    name = getattr(result.objective, "name", str(result.objective))
    title = title or f"celltwin screen: {name} in {result.context}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}{_PAGE_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _header_html(result),
        f"<h2>Top {min(top, len(result.table))} hits</h2>",
        '<p class="notes">Bars: score, whiskers: its interval (where the model gives one). '
        "In-domain score beside each (1: measured or as close as any training condition; "
        f"red below {OUT_OF_DOMAIN}: an extrapolation, amber below 0.5, grey: the model gives "
        "none).</p>",
        '<div class="figure">', figure_svg(score_bars(result, top=top)), "</div>",
    ]  # fmt: skip
    if result.effects is not None and result.effects.n_obs:
        first = str(result.table["label"].iloc[0])
        if first in set(result.effects.obs_names):
            parts += [f"<h2>Top hit: {html.escape(first)}</h2>", '<div class="figure">',
                      figure_svg(volcano(result, label=first)), "</div>"]  # fmt: skip
    if getattr(result, "cells", None) is not None and POPULATION in result.cells.obs:  # type: ignore[attr-defined]
        parts += ["<h2>Populations</h2>", '<div class="figure">',
                  figure_svg(twin_figure(result)), "</div>"]  # fmt: skip
    parts += ["<h2>Ranked candidates</h2>", _table_html(result.table, max_rows)]
    parts += [f"<script>{_JS}</script>", "</body></html>"]
    return "\n".join(parts)


def write_screen(
    result: ScreenLike,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the HTML page of a screen (:func:`screen_report`) to ``path``.

    An existing file is refused unless ``overwrite=True``.
    """
    out = check_output(path, overwrite=overwrite, kind="file", what="screen page")
    page = screen_report(result, title=title)  # before writing: a failure writes nothing
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
