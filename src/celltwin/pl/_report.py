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
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._keys import CONTEXT
from ..eval import MIN_CI_UNITS, Verdict
from ._headline import HEADLINE_SIZE, headline_html
from ._report_figures import delta_scatter, figure_svg, metric_distributions
from ._report_tables import (
    Tables,
    arrow,
    check_tables,
    key_columns,
    metric_directions,
    metric_order,
    reference_rows,
)

__all__ = ["delta_scatter", "identical_models", "metric_distributions", "render_report"]


def _fmt(value: object, digits: int = 4) -> str:
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
    return f"{v:.{digits}g}"


def _sort_value(value: object) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return html.escape(str(value), quote=True)
    return repr(v) if math.isfinite(v) else ""


def identical_models(models: Mapping[str, Tables]) -> list[tuple[str, str]]:
    """Pairs of models whose per-perturbation values are identical on every metric."""
    frames = {}
    for name, tables in models.items():
        long = tables["metrics"]
        keys = [*key_columns(long), "metric"]
        frames[name] = long.set_index(keys)["value"].sort_index()
    names = list(frames)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = frames[a], frames[b]
            if len(x) and x.index.equals(y.index) and np.allclose(x, y, equal_nan=True):
                pairs.append((a, b))
    return pairs


def _identical_notes(models: Mapping[str, Tables]) -> list[str]:
    return [
        f"{a} and {b} score the same on every perturbation and metric: they made the same "
        "prediction here."
        for a, b in identical_models(models)
    ]


# --- HTML blocks -----------------------------------------------------------------------------------


def _ci(row: pd.Series) -> str:
    """``[low, high] n=12``; only ``n=2`` below :data:`~celltwin.eval.MIN_CI_UNITS` units,
    where a bootstrap interval over units is degenerate."""
    n = pd.to_numeric(row["n"], errors="coerce")
    count = f"<span class=n>n={_fmt(n)}</span>"
    if not (math.isfinite(n) and n >= MIN_CI_UNITS):
        return f"<td>{count}</td>"
    return f"<td>[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}] {count}</td>"


def _header(name: str) -> str:
    """A column name that may wrap after its underscores (narrow columns, no sideways scroll)."""
    return html.escape(name).replace("_", "_<wbr>")


def _summary_html(models: Mapping[str, Tables]) -> str:
    directions = metric_directions(models)
    baselines = reference_rows(models, "baseline")
    ceiling = reference_rows(models, "ceiling")
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
            f"<td>{arrow(directions.get(metric))}</td>",
        ]
        for tables in models.values():
            s = tables["summary"]
            hit = s[(s["role"] == "model") & (s["metric"] == metric)]
            if hit.empty:
                cells += ["<td>–</td>"] * 3
                continue
            r = hit.iloc[0]
            cells += [f"<td>{_fmt(r['mean'])}</td>", f"<td>{_fmt(r['median'])}</td>", _ci(r)]
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
    metric_names = metric_order(models)
    directions = metric_directions(models)
    frames = []
    for model, tables in models.items():
        long = tables["metrics"]
        keys = key_columns(long)
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
    better: dict[bool | None, str] = {True: "higher is better; ", False: "lower is better; "}
    head = "".join(
        f'<th data-key="{html.escape(c, quote=True)}" data-type="'
        f'{"num" if c in metric_names else "str"}" '
        f'title="{better.get(directions.get(c), "")}click to sort">{_header(c)}</th>'
        for c in columns
    )
    body = []
    for row in table[columns].itertuples(index=False):
        cells = []
        for c, v in zip(columns, row, strict=True):
            shown = _fmt(v, 3) if c in metric_names else html.escape(str(v))
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
th,td{border:1px solid #e3e3e3;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f5f5f7}td.name,td:first-child{text-align:left}
#perturbations th{white-space:normal;vertical-align:bottom;font-size:11.5px;max-width:7em}
#perturbations{font-size:12px}
div.verdict{background:#f6f8fa;border:1px solid #dde3ea;border-radius:6px;padding:6px 14px;
font-size:14px}div.verdict ul{padding-left:18px;margin:4px 0}div.verdict li{margin:6px 0}
div.verdict li div{margin-left:8px;font-size:13px}.better,.above{color:#1a7f37}
.worse,.below{color:#b42318}.tie,.at{color:#555}p.warn{color:#8a5a00;font-size:13px}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" ▲"}
table.sortable th[aria-sort=descending]::after{content:" ▼"}
table.sortable tbody tr:nth-child(even){background:#fafafa}
span.n{color:#888;font-size:11px}.figure svg{max-width:100%;height:auto}
div.scroll{max-height:640px;overflow-y:auto;overflow-x:hidden;border:1px solid #eee}
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


def _figures_html(models: Mapping[str, Tables], *, max_scatter: int) -> list[str]:
    """The metric distributions and the delta scatter plots (when there are deltas)."""
    parts = []
    if metric_order(models):
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
    return parts


def render_report(
    models: Mapping[str, Tables],
    *,
    title: str,
    notes: Sequence[str] = (),
    max_scatter: int = 24,
    verdicts: Sequence[Verdict] = (),
    unit: str = "perturbation",
    shown: int = HEADLINE_SIZE,
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
    verdicts
        The headline, shown first (:func:`celltwin.eval.verdict`, :func:`headline_html`).
    unit
        What the values are averaged over (``perturbation``, ``fold``), for the headline.
    shown
        Verdicts written out in the headline (the first); its ceiling note covers all.

    Returns
    -------
    str
        The HTML page: summary table (mean, median, bootstrap CI per metric, baseline and
        ceiling means), metric distributions with baseline/ceiling lines, predicted vs true
        delta scatter plots, and the per-perturbation table (click a header to sort; open
        the page with ``#sort=<metric>`` or ``#sort=-<metric>`` to sort on load).
    """
    check_tables(models)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if verdicts:
        parts += ["<h2>Verdict</h2>", headline_html(verdicts, unit=unit, shown=shown)]
    notes = [*notes, *_identical_notes(models)]
    if notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    parts += ["<h2>Summary</h2>", _summary_html(models)]
    parts.append(
        '<p class="notes">95% CI: percentile bootstrap of the mean over perturbations, shown '
        f"from {MIN_CI_UNITS} perturbations on (below, only their number n). Baselines "
        "and ceiling: means over the same perturbations.</p>"
    )
    parts += _figures_html(models, max_scatter=max_scatter)
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
