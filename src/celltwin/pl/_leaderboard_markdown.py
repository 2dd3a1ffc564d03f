"""A benchmark leaderboard as markdown: the suite's section of BENCHMARKS.md.

Laid out from :class:`~celltwin.pl.LeaderboardTables` (see :mod:`._leaderboard` for the
conventions of metric names and model roles); nothing is computed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ._leaderboard import REFERENCE_ROLES, LeaderboardTables

__all__ = ["leaderboard_markdown"]


# --- formatting ----------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 10 ** (-digits)):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def _cell(summary: pd.DataFrame, model: str, metric: str, *, ci: bool = True) -> str:
    row = summary[(summary["model"] == model) & (summary["metric"] == metric)]
    if row.empty:
        return "—"
    r = row.iloc[0]
    if not ci or r["n_folds"] < 2:
        return _fmt(r["mean"])
    return f"{_fmt(r['mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"


def _small_n(c: Mapping[str, Any]) -> str:
    """The comparison's checks that do not lean on the bootstrap (narrow with few units);
    nothing for a single unit, where neither is defined."""
    if c["n"] < 2:
        return ""
    return (
        f"Student's t 95% CI [{_fmt(c['t_low'])}, {_fmt(c['t_high'])}]; Wilcoxon signed-rank "
        f"p = {_fmt(c['wilcoxon_p'])}."
    )


def _count(n: int, noun: str) -> str:
    """``"1 unit"``, ``"8 units"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _base_metric(name: str) -> str:
    """``pearson_delta[combo_seen2]`` / ``mae/ceiling`` -> the metric it is derived from."""
    return name.split("[", 1)[0].split("/", 1)[0]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table_head(header: Sequence[str]) -> list[str]:
    return [_row(header), "|" + "---|" * len(header)]


# --- markdown sections -------------------------------------------------------------------------


def _shown_metrics(t: LeaderboardTables) -> list[str]:
    return [m for m in t.metrics if m in set(t.summary["metric"])]


def _header(t: LeaderboardTables) -> list[str]:
    seeds = t.record.get("seeds")
    if not seeds:
        seed_text = f"seed {t.seed}"
    else:
        seed_text = f"seeds {', '.join(map(str, seeds))} (each unit's values averaged over them)"
    primary = t.metrics[0]
    arrow = t.arrow(primary) if primary in _shown_metrics(t) else ""
    lines = [
        f"## {t.suite} (v{t.version})",
        "",
        t.description,
        "",
        f"{_count(t.n_folds, 'fold')}, {seed_text}. Mean over folds [bootstrap 95% CI over folds]; "
        f"ranked by **{primary}** {arrow}.",
        "",
    ]
    left_out = t.record.get("left_out") or {}
    if left_out:
        names = [f"{model} ({', '.join(folds)})" for model, folds in left_out.items()]
        lines += ["Left out, not run at every seed: " + "; ".join(names) + ".", ""]
    return lines


def _main_table(t: LeaderboardTables) -> list[str]:
    """Models x metrics, coverage last; models run on fewer folds are marked."""
    summary, metrics = t.summary, _shown_metrics(t)
    refs = [m for m in t.order if t.role(m) in REFERENCE_ROLES]
    lines = _table_head(["model", *[f"{m} {t.arrow(m)}" for m in metrics], "coverage"])
    # Folds with any value: a model that cannot produce the primary metric at all (``linear``
    # has no cells for the VCC score) still ran on every fold.
    ran = summary.groupby("model")["n_folds"].max()
    partial = []
    for model in t.order:
        cells = [_cell(summary, model, m) for m in metrics]
        cov = "" if model in refs else _cell(summary, model, t.coverage_metric, ci=False)
        label = t.label(model)
        # A model run on some folds only is not comparable with the others' means: say so.
        k = int(ran.get(model, t.n_folds))
        if model not in refs and k < t.n_folds:
            label += f" ({k} of {t.n_folds} folds)"
            partial.append(model)
        lines.append(_row([label, *cells, cov]))
    if partial:
        lines += [
            "",
            f"{', '.join(partial)}: run on fewer folds than the others; compare them with the "
            "paired differences below (same folds only), not with the means above.",
        ]
    return lines


def _intervals(t: LeaderboardTables) -> list[str]:
    if not len(t.intervals):
        return []
    nominal = t.record.get("interval_nominal")
    return [
        "",
        "Effect intervals: share of held-out true gene effects inside the model's interval"
        + (f" (nominal {nominal:.0%}): " if nominal else ": ")
        + "; ".join(
            f"{r.model} {_fmt(r.mean)}"
            + (f" [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if r.ci_low < r.ci_high else "")
            for r in t.intervals.itertuples()
        )
        + ".",
    ]


def _fractions(t: LeaderboardTables) -> list[str]:
    have = set(t.summary["metric"])
    fractions = [f"{m}/ceiling" for m in _shown_metrics(t) if f"{m}/ceiling" in have]
    if not fractions:
        return []
    lines = [
        "",
        "Fraction of the split-half noise ceiling (1 = as good as a replicate; "
        "model/ceiling, or ceiling/model for errors):",
        "",
        *_table_head(["model", *fractions]),
    ]
    for model in t.order:
        if t.role(model) not in REFERENCE_ROLES:
            cells = [_cell(t.summary, model, f) for f in fractions]
            lines.append(_row([t.label(model), *cells]))
    return lines


def _categories(t: LeaderboardTables) -> list[str]:
    """Per-category values of the first two metrics (the primary and the suite's own score)."""
    metrics = _shown_metrics(t)
    categorised = sorted(
        {
            m
            for m in t.summary["metric"]
            if "[" in m and "/" not in m and _base_metric(m) in t.metrics[:2]
        },
        key=lambda m: (metrics.index(_base_metric(m)) if _base_metric(m) in metrics else 99, m),
    )
    if not categorised:
        return []
    lines = ["", "By category:", "", *_table_head(["model", *categorised])]
    for model in t.order:
        cells = [_cell(t.summary, model, c) for c in categorised]
        lines.append(_row([t.label(model), *cells]))
    return lines


def _comparison(t: LeaderboardTables) -> list[str]:
    c = t.comparison
    if c is None or c["n"] <= 0:
        return []
    ci = f" [95% CI {_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]" if c["n"] >= 2 else ""
    return [
        "",
        f"Paired comparison ({c['kind']}), {c['metric']}: **{c['a']}** − **{c['b']}** = "
        f"{_fmt(c['mean_diff'])}{ci} over "
        f"{_count(c['n'], 'paired ' + c['unit'])}; {c['a']} better on "
        f"{c['share_a_better']:.0%}, "
        f"{c['b']} on {c['share_b_better']:.0%}. {_small_n(c)}".rstrip(),
    ]


def _peer_table(t: LeaderboardTables) -> list[str]:
    rows = [c for c in t.peer_comparisons if c["n"] > 0]
    if not rows:
        return []
    lines = [
        "",
        "Paired comparisons (celltwin's best learned model vs each peer; difference = learned "
        "− peer, 95% bootstrap CI; with few units, also Student's t 95% CI and the Wilcoxon "
        "signed-rank p):",
        "",
        "| learned − peer | metric | difference [95% CI] | paired | learned better | "
        "peer better | t 95% CI | Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        lines.append(
            f"| {c['a']} − {c['b']} | {c['metric']} {t.arrow(c['metric'])} | "
            f"{_fmt(c['mean_diff'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}] | "
            f"{_count(c['n'], c['unit'])} | {c['share_a_better']:.0%} | "
            f"{c['share_b_better']:.0%} | [{_fmt(c['t_low'])}, {_fmt(c['t_high'])}] | "
            f"{_fmt(c['wilcoxon_p'])} |"
        )
    return lines


def _timings(t: LeaderboardTables) -> list[str]:
    timing = t.timings
    if not len(timing):
        return []
    lines = [
        "",
        "| model | status | fit+predict wall s (sum over folds) | CPU s | peak Δ memory MB (max) |",
        "|---|---|---|---|---|",
    ]
    for model, group in timing.groupby("model", sort=True):
        statuses = ", ".join(sorted(set(group["status"].astype(str))))
        total = group["total_s"].astype(float)
        delta = group["peak_delta_mb"].astype(float)
        cpu = group["cpu_s"].astype(float)
        seconds = f"{float(total.sum()):.1f}" if total.notna().any() else "n/a"
        cpu_text = f"{float(cpu.sum()):.1f}" if cpu.notna().any() else "n/a"
        memory = f"{float(delta.max()):.0f}" if delta.notna().any() else "n/a"
        lines.append(f"| {model} | {statuses} | {seconds} | {cpu_text} | {memory} |")
    notes = timing[timing["status"].astype(str) != "ok"].drop_duplicates("model")
    for _, row in notes.iterrows():
        lines.append(f"\n- {row['model']}: {row['status']} — {row['reason']}")
    return lines


def _wall_time(t: LeaderboardTables) -> list[str]:
    record = t.record.get("timings", {})
    if record.get("total_s") is None:
        return []
    runs = t.record.get("merged_from") or t.record.get("averaged_from") or []
    combined = len(runs) > 1
    if combined:
        # Combined runs may have run side by side: their wall times do not add up.
        text = f"Wall time of the longest of the {len(runs)} combined runs: "
    else:
        text = "Wall time of the run: "
    text += f"{record['total_s']:.0f} s"
    if record.get("cpu_s") is not None:
        text += f" ({record['cpu_s']:.0f} CPU s" + (" over all of them" if combined else "")
        load = record.get("load_average_start")
        text += f"; load average at start {load[0]:.1f})." if load else ")."
    return ["", text]


def leaderboard_markdown(tables: LeaderboardTables) -> str:
    """Markdown for one suite: models x metrics (mean over folds, 95% CI), ceiling, timings.

    Parameters
    ----------
    tables
        The leaderboard's tables (:meth:`celltwin.benchmark.Leaderboard.tables`).

    Returns
    -------
    str
        The suite's section: a heading, the models x metrics table (ranked by the primary
        metric, coverage last), effect-interval coverage, fractions of the noise ceiling,
        values per category, the paired comparisons, timings and the run's wall time.
    """
    sections = (
        _header,
        _main_table,
        _intervals,
        _fractions,
        _categories,
        _comparison,
        _peer_table,
        _timings,
        _wall_time,
    )
    lines = [line for section in sections for line in section(tables)]
    return "\n".join(lines) + "\n"
