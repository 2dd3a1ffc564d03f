"""An explanation as a page: the HTML report of :func:`celltwin.explain.explain` (issue 19).

Same style as the evaluation report (:func:`render_report`: inline CSS, sortable tables, inline
SVG figures, no network). :func:`write_explanation` writes the tables as CSV, the causal map as
GraphML, and ``report.html`` (the files of ``celltwin explain``).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

from .._output import check_output
from ..explain import Explanation
from ._evaluation import REPORT_FILE
from ._explain_figures import activity_figure, path_network
from ._report import _CSS, _JS, _fmt, _header, _sort_value
from ._report_figures import figure_svg

__all__ = ["explanation_report", "write_explanation"]

_NET_TITLES = {"dorothea": "Regulators (DoRothEA)", "progeny": "Pathways (PROGENy)"}


def _short(genes: str, n: int = 6) -> str:
    parts = genes.split(",") if genes else []
    return ",".join(parts[:n]) + (f" (+{len(parts) - n})" if len(parts) > n else "")


def _table(frame: pd.DataFrame, *, max_rows: int = 200, table_id: str = "") -> str:
    """A sortable HTML table of the first ``max_rows`` rows."""
    shown = frame.head(max_rows).copy()
    for c in shown.columns:
        if pd.api.types.is_bool_dtype(shown[c]):
            shown[c] = shown[c].map({True: "yes", False: "no"})
        elif c == "genes":  # overlap lists: the first few here, all in the CSV
            shown[c] = [_short(str(v)) for v in shown[c]]
    numeric = {c for c in shown.columns if pd.api.types.is_numeric_dtype(shown[c])}
    head = "".join(
        f'<th data-type="{"num" if c in numeric else "str"}" title="click to sort">'
        f"{_header(str(c))}</th>"
        for c in shown.columns
    )
    body = []
    for row in shown.itertuples(index=False):
        cells = [
            f'<td data-v="{_sort_value(v)}">{_fmt(v, 3) if c in numeric else html.escape(str(v))}'
            "</td>"
            for c, v in zip(shown.columns, row, strict=True)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="notes">First {max_rows} of {len(frame)} rows; all in the CSV.</p>'
        if len(frame) > max_rows
        else ""
    )
    ident = f' id="{table_id}"' if table_id else ""
    return (
        f'<div class="scroll"><table{ident} class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _activity_html(result: Explanation, top: int) -> list[str]:
    parts = []
    for net, act in result.activity.items():
        parts += [f"<h2>{_NET_TITLES.get(net, net)}</h2>", f'<p class="notes">{html.escape(act.summary())}</p>']  # fmt: skip
        parts += ['<div class="figure">', figure_svg(activity_figure(act.scores, top=top)), "</div>"]  # fmt: skip
        long = result.tables()[f"activity_{net}"]
        long = long.reindex(long["score"].abs().sort_values(ascending=False).index)
        parts.append(_table(long.groupby("condition", sort=False).head(top), max_rows=120))
    return parts


def _enrichment_html(result: Explanation, top: int) -> list[str]:
    found = result.enrichment
    if found is None:
        return []
    parts = [f"<h2>Enrichment ({html.escape(found.collection)})</h2>"]
    hits = found.top(top)
    if hits.empty:
        parts.append('<p class="notes">No set over-represented at FDR &le; 0.05 among the up '
                     "or down genes of any condition.</p>")  # fmt: skip
    else:
        parts += ['<p class="notes">Over-representation among each condition\'s up and down '
                  "genes (one-sided hypergeometric test, BH), FDR &le; 0.05.</p>", _table(hits)]  # fmt: skip
    if not found.ranked.empty:
        ranked = found.ranked[found.ranked["fdr"] <= 0.05].groupby("condition").head(top)
        text = "Ranked-list test (decoupler GSEA; NES &gt; 0: set at the top of the response)"
        parts.append(
            f'<p class="notes">{text}, FDR &le; 0.05' + (": none.</p>" if ranked.empty else ".</p>")
        )
        parts += [] if ranked.empty else [_table(ranked)]
    return parts


def _paths_html(result: Explanation, max_conditions: int) -> list[str]:
    paths = result.paths
    if paths.empty:
        return []
    parts = ["<h2>Regulatory paths</h2>",
             '<p class="notes">From each perturbed target to its most affected genes: the '
             "shortest path in the prior network whose sign agrees with the response "
             "(-&gt; activation, -| repression, (string) an unsigned STRING link, taken as "
             "activating). In the figures: red arrows activate, blue bars repress, grey dashed "
             "lines are STRING links; genes shaded red went up, blue went down.</p>"]  # fmt: skip
    found = paths[paths["found"]]
    # the strongest responses first: their paths are the ones worth drawing
    size = result.effects.pow(2).sum(axis=1).sort_values(ascending=False, kind="stable")
    drawn = [str(c) for c in size.index if str(c) in set(found["condition"].astype(str))]
    for condition in drawn[:max_conditions]:
        parts += ['<div class="figure">', figure_svg(path_network(paths, condition=condition)),
                  "</div>"]  # fmt: skip
    ordered = pd.concat([found, paths[~paths["found"]]])
    parts.append(_table(ordered.drop(columns=["path"]), table_id="paths"))
    return parts


def _causal_html(result: Explanation) -> list[str]:
    if result.causal is None:
        return []
    edges = result.causal.edges
    return ["<h2>Causal map</h2>",
            f'<p class="notes">{len(edges)} perturbed target -&gt; gene edges at FDR &lt; '
            f"{result.causal.alpha} (Wilcoxon rank-sum against the context's controls); all in "
            "causal_map.csv and causal_map.graphml.</p>", _table(edges)]  # fmt: skip


def _sources_html(result: Explanation) -> list[str]:
    # --- SOURCES (issue 19, point 4): what each prediction leaned on ---------------------------
    if result.sources is None:
        return []
    return ["<h2>What each prediction leaned on</h2>", _table(result.sources, table_id="sources")]


def explanation_report(
    result: Explanation, *, title: str | None = None, top: int = 15, max_conditions: int = 6
) -> str:
    """The self-contained HTML page of an explanation.

    Parameters
    ----------
    result
        As :func:`celltwin.explain.explain` or :func:`celltwin.explain.explain_file` return it.
    title
        Page title; default ``"celltwin explanation"``.
    top
        Sources, sets and edges shown per condition (all are in the CSV files).
    max_conditions
        Path networks drawn: one per condition, the largest responses first.
    """
    title = title or "celltwin explanation"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>",
    ]  # fmt: skip
    parts += _sources_html(result)
    parts += _activity_html(result, top)
    parts += _enrichment_html(result, top)
    parts += _paths_html(result, max_conditions)
    parts += _causal_html(result)
    parts += [f"<script>{_JS}</script>", "</body></html>"]
    return "\n".join(parts)


def write_explanation(
    result: Explanation,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an explanation's tables (CSV), causal map (GraphML) and ``report.html`` into ``path``.

    An existing non-empty folder is refused unless ``overwrite=True``.

    Returns
    -------
    Path
        The folder written.
    """
    out = check_output(path, overwrite=overwrite, kind="folder", what="explanation folder")
    report = explanation_report(result, title=title)  # before writing: a failure writes nothing
    out.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables().items():
        if name != "causal_map":
            table.to_csv(out / f"{name}.csv", index=False)
    if result.causal is not None:
        result.causal.write(out)
    (out / REPORT_FILE).write_text(report, encoding="utf-8")
    return out
