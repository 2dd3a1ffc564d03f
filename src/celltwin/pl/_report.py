"""One self-contained HTML report from evaluation tables, for one model or several side by side.

The page needs no network: CSS and the few lines of JavaScript (sortable table) are inline and
figures are inline SVG drawn with matplotlib's object API (no pyplot state). It consumes tables
only, the ones :meth:`celltwin.eval.Evaluation.tables` returns, per model:

``metrics``
    Long per-perturbation values: ``perturbation, context, metric, value`` (other key columns
    such as ``dose`` are kept as row labels).
``summary``
    One row per (source, metric): ``source`` (``model`` or a baseline / ceiling name), ``role``
    (``model``, ``baseline`` or ``ceiling``), ``metric``, ``mean``, ``median``, ``ci_low``,
    ``ci_high``, ``n``, and optionally ``higher_is_better`` and ``description``.
``deltas`` (optional)
    ``perturbation, context, gene, true_delta, pred_delta`` on each perturbation's top DE genes.

Baselines and the ceiling describe the truth, so with several models they are taken from the
first model that has them. The building blocks (:func:`metric_distributions`,
:func:`delta_scatter`, and the HTML tables) are usable on their own.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._keys import CONTEXT, PERTURBATION

__all__ = ["delta_scatter", "metric_distributions", "render_report"]

Tables = Mapping[str, pd.DataFrame]

_KEY_ORDER = (CONTEXT, PERTURBATION)
_COLORS = ("#1f77b4", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_BASELINE_STYLE = {"control": ("#7f7f7f", "--"), "mean": ("#ff7f0e", "--")}
_CEILING_COLOR = "#2ca02c"


# --- table helpers ---------------------------------------------------------------------------------


def _check(models: Mapping[str, Tables]) -> None:
    if not models:
        raise ValueError("render_report needs at least one model's tables")
    for name, tables in models.items():
        for key in ("metrics", "summary"):
            if key not in tables:
                raise KeyError(f"tables of model {name!r} lack {key!r}; pass Evaluation.tables()")
        missing = {PERTURBATION, CONTEXT, "metric", "value"} - set(tables["metrics"].columns)
        if missing:
            raise KeyError(f"metrics table of model {name!r} lacks columns {sorted(missing)}")


def _key_columns(frame: pd.DataFrame) -> list[str]:
    """Columns identifying a perturbation: context, perturbation, then any others (e.g. dose)."""
    extra = [c for c in frame.columns if c not in (*_KEY_ORDER, "metric", "value")]
    return [*_KEY_ORDER, *extra]


def _metric_order(models: Mapping[str, Tables]) -> list[str]:
    order: dict[str, None] = {}
    for tables in models.values():
        order.update(dict.fromkeys(tables["metrics"]["metric"].astype(str)))
    return list(order)


def _reference_rows(models: Mapping[str, Tables], role: str) -> pd.DataFrame:
    """Summary rows of ``role`` (baselines or ceiling) from the first model that has them."""
    for tables in models.values():
        summary = tables["summary"]
        rows = summary[summary["role"] == role]
        if not rows.empty:
            return rows
    return pd.DataFrame(columns=["source", "role", "metric", "mean"])


def _directions(models: Mapping[str, Tables]) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for tables in models.values():
        summary = tables["summary"]
        if "higher_is_better" in summary.columns:
            for metric, higher in zip(summary["metric"], summary["higher_is_better"], strict=True):
                if isinstance(higher, bool | np.bool_):
                    out.setdefault(str(metric), bool(higher))
    return out


def _arrow(higher: bool | None) -> str:
    return {True: "↑", False: "↓"}.get(higher, "") if higher is not None else ""


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return html.escape(str(value))
    if not math.isfinite(v):
        return "–"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def _sort_value(value: object) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return html.escape(str(value), quote=True)
    return repr(v) if math.isfinite(v) else ""


# --- figures ---------------------------------------------------------------------------------------


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
    _check(models)
    names = list(metrics) if metrics is not None else _metric_order(models)
    baselines = _reference_rows(models, "baseline")
    ceiling = _reference_rows(models, "ceiling")
    directions = _directions(models)
    ncols = max(1, min(ncols, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = _grid(nrows, ncols, width=3.3, height=2.5, wspace=0.3, hspace=0.55)
    handles: dict[str, object] = {}
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
        ax.set_title(f"{metric} {_arrow(directions.get(metric))}".strip(), fontsize=9)
        ax.tick_params(labelsize=7)
        if pooled.size == 0:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
            continue
        lo = min(pooled.min(), *ref_values) if ref_values else pooled.min()
        hi = max(pooled.max(), *ref_values) if ref_values else pooled.max()
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, int(np.clip(np.sqrt(pooled.size) * 2, 8, 40)) + 1)
        for i, (model, values) in enumerate(per_model.items()):
            values = values[np.isfinite(values)]
            color = _COLORS[i % len(_COLORS)]
            _, _, patches = ax.hist(
                values, bins=bins, color=color, alpha=0.35, histtype="stepfilled"
            )
            ax.hist(values, bins=bins, color=color, histtype="step", linewidth=1.0)
            handles.setdefault(model, patches[0] if len(patches) else None)
        for _, row in baselines[baselines["metric"] == metric].iterrows():
            color, style = _BASELINE_STYLE.get(str(row["source"]), ("#444444", ":"))
            if math.isfinite(float(row["mean"])):
                line = ax.axvline(float(row["mean"]), color=color, linestyle=style, linewidth=1.4)
                handles.setdefault(f"baseline: {row['source']}", line)
        for _, row in ceiling[ceiling["metric"] == metric].iterrows():
            if math.isfinite(float(row["mean"])):
                line = ax.axvline(float(row["mean"]), color=_CEILING_COLOR, linewidth=1.6)
                handles.setdefault("ceiling", line)
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


def _scatter_keys(deltas: pd.DataFrame, max_perturbations: int) -> list[tuple]:
    """The perturbations with the largest true effect on their top genes, largest first."""
    keys = [c for c in _key_columns(deltas) if c not in ("gene", "true_delta", "pred_delta")]
    strength = deltas.assign(_abs=deltas["true_delta"].abs()).groupby(keys, sort=True)["_abs"].sum()
    top = strength.sort_values(ascending=False, kind="stable").index[:max_perturbations]
    return [k if isinstance(k, tuple) else (k,) for k in top]


def delta_scatter(
    models: Mapping[str, Tables], *, max_perturbations: int = 24, ncols: int = 6
) -> Figure | None:
    """Predicted vs true change from control on each perturbation's top DE genes, a grid.

    At most ``max_perturbations`` panels, the perturbations with the largest true effects (taken
    from the first model's ``deltas``); models in colours, the diagonal in grey. None when no
    model has a ``deltas`` table.
    """
    _check(models)
    with_deltas = {
        m: t["deltas"] for m, t in models.items() if "deltas" in t and not t["deltas"].empty
    }
    if not with_deltas:
        return None
    first = next(iter(with_deltas.values()))
    keys = [c for c in _key_columns(first) if c not in ("gene", "true_delta", "pred_delta")]
    chosen = _scatter_keys(first, max_perturbations)
    n_contexts = first[CONTEXT].nunique()
    ncols = max(1, min(ncols, len(chosen)))
    nrows = max(1, math.ceil(len(chosen) / ncols))
    fig, axes = _grid(nrows, ncols, width=2.2, height=2.2, wspace=0.35, hspace=0.45)
    indexed = {m: d.set_index(keys).sort_index() for m, d in with_deltas.items()}
    for ax, key in zip(axes, chosen, strict=False):
        label = dict(zip(keys, key, strict=True))
        title = str(label[PERTURBATION])
        if n_contexts > 1:
            title += f" · {label[CONTEXT]}"
        extras = [str(label[k]) for k in keys if k not in _KEY_ORDER and str(label[k])]
        if extras:
            title += f" ({', '.join(extras)})"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        # Few ticks: each tick label is a text to lay out, the bulk of the drawing time.
        ax.locator_params(nbins=3)
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


# --- HTML blocks -----------------------------------------------------------------------------------


def _summary_html(models: Mapping[str, Tables]) -> str:
    directions = _directions(models)
    baselines = _reference_rows(models, "baseline")
    ceiling = _reference_rows(models, "ceiling")
    base_names = list(dict.fromkeys(baselines["source"].astype(str)))
    metrics: dict[str, str] = {}
    for tables in models.values():
        s = tables["summary"]
        model_rows = s[s["role"] == "model"]
        for _, row in model_rows.iterrows():
            description = row.get("description", "") if "description" in s.columns else ""
            metrics.setdefault(str(row["metric"]), str(description or ""))
    head = ['<th rowspan="2">metric</th>', '<th rowspan="2">better</th>']
    head += [f'<th colspan="3">{html.escape(m)}</th>' for m in models]
    head += [f'<th rowspan="2">baseline: {html.escape(b)}</th>' for b in base_names]
    if not ceiling.empty:
        head.append('<th rowspan="2">ceiling</th>')
    sub = "".join("<th>mean</th><th>median</th><th>95% CI</th>" for _ in models)
    rows = []
    for metric, description in metrics.items():
        cells = [
            f'<td class="name" title="{html.escape(description, quote=True)}">'
            f"{html.escape(metric)}</td>",
            f"<td>{_arrow(directions.get(metric))}</td>",
        ]
        for tables in models.values():
            s = tables["summary"]
            hit = s[(s["role"] == "model") & (s["metric"] == metric)]
            if hit.empty:
                cells += ["<td>–</td>"] * 3
                continue
            r = hit.iloc[0]
            cells += [
                f"<td>{_fmt(r['mean'])}</td>",
                f"<td>{_fmt(r['median'])}</td>",
                f"<td>[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] <span class=n>n={_fmt(r['n'])}"
                "</span></td>",
            ]
        for base in base_names:
            hit = baselines[(baselines["source"] == base) & (baselines["metric"] == metric)]
            cells.append(f"<td>{_fmt(hit['mean'].iloc[0]) if not hit.empty else '–'}</td>")
        if not ceiling.empty:
            hit = ceiling[ceiling["metric"] == metric]
            cells.append(f"<td>{_fmt(hit['mean'].iloc[0]) if not hit.empty else '–'}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table id="summary" class="summary"><thead><tr>'
        + "".join(head)
        + f"</tr><tr>{sub}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _perturbation_html(models: Mapping[str, Tables]) -> str:
    metric_names = _metric_order(models)
    directions = _directions(models)
    frames = []
    for model, tables in models.items():
        long = tables["metrics"]
        keys = _key_columns(long)
        wide = long.pivot(index=keys, columns="metric", values="value").sort_index().reset_index()
        wide.insert(0, "model", model)
        frames.append(wide)
    table = pd.concat(frames, ignore_index=True)
    keys = [c for c in table.columns if c not in metric_names]
    if len(models) == 1:
        keys.remove("model")
    if table[CONTEXT].nunique() == 1:
        keys.remove(CONTEXT)
    columns = keys + [m for m in metric_names if m in table.columns]
    better = {True: "higher is better; ", False: "lower is better; "}
    head = "".join(
        f'<th data-key="{html.escape(c, quote=True)}" data-type="'
        f'{"num" if c in metric_names else "str"}" '
        f'title="{better.get(directions.get(c), "")}click to sort">{html.escape(c)}</th>'
        for c in columns
    )
    body = []
    for row in table[columns].itertuples(index=False):
        cells = []
        for c, v in zip(columns, row, strict=True):
            shown = _fmt(v) if c in metric_names else html.escape(str(v))
            cells.append(f'<td data-v="{_sort_value(v)}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table id="perturbations" class="sortable"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "\n".join(body)
        + "</tbody></table>"
    )


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1240px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
ul.notes,p.notes{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #e3e3e3;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f5f5f7}td.name,td:first-child{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" ▲"}
table.sortable th[aria-sort=descending]::after{content:" ▼"}
table.sortable tbody tr:nth-child(even){background:#fafafa}
span.n{color:#888;font-size:11px}.figure svg{max-width:100%;height:auto}
div.scroll{max-height:640px;overflow:auto;border:1px solid #eee}
div.scroll thead th{position:sticky;top:0}
"""

# Sort the per-perturbation table on a header click; "#sort=mae" (ascending) or "#sort=-mae"
# (descending) in the URL sorts it on load. Empty values (NaN) always go last.
_JS = """
(function(){
function sortBy(table, col, desc){
  var th = table.tHead.rows[0].cells[col], numeric = th.getAttribute('data-type') === 'num';
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  rows.sort(function(a, b){
    var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
    if (x === '' || y === '') { return (x === '') - (y === ''); }
    var c = numeric ? parseFloat(x) - parseFloat(y) : (x < y ? -1 : (x > y ? 1 : 0));
    return desc ? -c : c;
  });
  rows.forEach(function(r){ body.appendChild(r); });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function(h){ h.removeAttribute('aria-sort'); });
  th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
}
document.querySelectorAll('table.sortable').forEach(function(table){
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, i){
    th.addEventListener('click', function(){
      sortBy(table, i, th.getAttribute('aria-sort') === 'ascending');
    });
  });
});
var m = /sort=(-?)([^&]+)/.exec(window.location.hash);
var table = document.getElementById('perturbations');
if (m && table) {
  var key = decodeURIComponent(m[2]);
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, i){
    if (th.getAttribute('data-key') === key) { sortBy(table, i, m[1] === '-'); }
  });
}
})();
"""


def render_report(
    models: Mapping[str, Tables],
    *,
    title: str,
    notes: Sequence[str] = (),
    max_scatter: int = 24,
) -> str:
    """One self-contained HTML page for one or several models evaluated on the same truth.

    Parameters
    ----------
    models
        ``{model name: tables}``, each as :meth:`celltwin.eval.Evaluation.tables` returns
        (``metrics``, ``summary``, optionally ``deltas``). Several models are shown side by
        side: summary columns per model, overlaid distributions, colours in the scatter plots
        and a ``model`` column in the per-perturbation table.
    title
        Page title.
    notes
        Lines shown under the title (e.g. what was skipped and why).
    max_scatter
        At most this many perturbations in the delta scatter grid.

    Returns
    -------
    str
        The HTML page: summary table (mean, median, bootstrap CI per metric, baseline and
        ceiling means), metric distributions with baseline/ceiling lines, predicted vs true
        delta scatter plots, and the per-perturbation table (click a header to sort; open
        the page with ``#sort=<metric>`` or ``#sort=-<metric>`` to sort on load).
    """
    _check(models)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    parts += ["<h2>Summary</h2>", _summary_html(models)]
    parts.append(
        '<p class="notes">95% CI: percentile bootstrap of the mean over perturbations. Baselines '
        "and ceiling: means over the same perturbations.</p>"
    )
    per_pert = [m for m in _metric_order(models)]
    if per_pert:
        parts += [
            "<h2>Distributions over perturbations</h2>",
            '<div class="figure" id="distributions">',
            figure_svg(metric_distributions(models)),
            "</div>",
        ]
    scatter = delta_scatter(models, max_perturbations=max_scatter)
    if scatter is not None:
        parts += [
            "<h2>Predicted vs true change on the top DE genes</h2>",
            f'<p class="notes">Up to {max_scatter} perturbations with the largest true effects; '
            "each point is one of the perturbation's top DE genes in the truth.</p>",
            '<div class="figure" id="scatter">',
            figure_svg(scatter),
            "</div>",
        ]
    parts += [
        "<h2>Per perturbation</h2>",
        '<p class="notes">Click a column header to sort.</p>',
        '<div class="scroll">',
        _perturbation_html(models),
        "</div>",
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
