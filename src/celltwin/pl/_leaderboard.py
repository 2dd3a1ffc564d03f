"""A benchmark leaderboard's tables (:class:`LeaderboardTables`) and its HTML page.

Tables in, text out: :class:`LeaderboardTables` holds what a leaderboard shows, computed by
:meth:`celltwin.benchmark.Leaderboard.tables` (means over folds with their bootstrap CIs, the
ranking, the paired comparisons, the timings); :func:`leaderboard_html` and
:func:`~celltwin.pl.leaderboard_markdown` (:mod:`._leaderboard_markdown`) only lay them out.

Metric names follow the leaderboard's conventions: ``<metric>/ceiling`` is a metric as a
fraction of the split-half noise ceiling, ``<metric>[<category>]`` its value over the units of
one category. Model roles are ``ceiling`` and ``reference`` (reference rows, not models),
``baseline``, ``peer`` and ``model`` (celltwin's learned models and any other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..eval import Verdict
from ._report import render_report
from ._report_tables import Tables

__all__ = ["REFERENCE_ROLES", "LeaderboardTables", "leaderboard_html"]

#: Roles of reference rows (not models): the split-half ceiling, the signature reference.
REFERENCE_ROLES = ("ceiling", "reference")


@dataclass(frozen=True)
class LeaderboardTables:
    """What a leaderboard shows, computed: nothing here is computed again when it is laid out.

    Attributes
    ----------
    suite, version, description
        The suite.
    metrics
        The suite's metrics, primary first (those without values are left out of the tables).
    summary
        One row per (model, metric): ``model, role, metric, n_folds, mean, ci_low, ci_high``
        (mean over folds, bootstrap 95% CI over folds).
    order
        Rows of the tables: the reference rows, then the models best first.
    directions
        Whether higher is better, per metric of :attr:`summary` and :attr:`metrics`.
    n_folds
        Folds of the run.
    coverage_metric
        The metric of :attr:`summary` holding the share of units each model predicted (shown
        in the last column, without CI).
    intervals
        Effect-interval coverage per model (``model, mean, ci_low, ci_high``); may be empty.
    comparison
        Paired comparison of the best learned model with the best baseline (keys of
        :class:`celltwin.eval.PairedComparison` plus ``kind, metric, a, b, unit``), or ``None``.
    peer_comparisons
        The same, of the best learned model with each peer.
    timings
        One row per fold and model: ``status, reason, total_s, cpu_s, peak_delta_mb``.
    record
        The run's record (``run.json``): read for ``seeds``, ``left_out``,
        ``interval_nominal``, ``timings`` and ``merged_from`` / ``averaged_from``.
    seed
        Seed of the run.
    verdicts
        The headline (:meth:`celltwin.benchmark.Leaderboard.verdict`): the best model against
        the best baseline and the ceiling, shown first in the report.
    """

    suite: str
    version: str
    description: str
    metrics: Sequence[str]
    summary: pd.DataFrame
    order: Sequence[str]
    directions: Mapping[str, bool]
    n_folds: int
    coverage_metric: str
    intervals: pd.DataFrame
    comparison: Mapping[str, Any] | None = None
    peer_comparisons: Sequence[Mapping[str, Any]] = ()
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
    record: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    verdicts: Sequence[Verdict] = ()

    def role(self, model: str) -> str:
        """The role of ``model`` in :attr:`summary` (``"model"`` when it has no row)."""
        rows = self.summary.loc[self.summary["model"] == model, "role"]
        return str(rows.iloc[0]) if len(rows) else "model"

    def label(self, model: str) -> str:
        """The model's name as the tables show it (markdown emphasis, its role)."""
        tag = self.role(model)
        if tag == "ceiling":
            return "*ceiling (split-half)*"
        if tag == "reference":
            return "*reference (measured elsewhere)*"
        if tag in ("baseline", "peer"):
            return f"{model} ({tag})"
        return f"**{model}**"

    def arrow(self, metric: str) -> str:
        """``↑`` where higher is better, else ``↓``."""
        return "↑" if self.directions.get(metric, True) else "↓"


def leaderboard_html(tables: LeaderboardTables, models: Mapping[str, Tables]) -> str:
    """The suite's HTML report: models side by side (95% CIs), the ceiling, notes.

    Parameters
    ----------
    tables
        The leaderboard's tables (for the title, the notes and the models' roles).
    models
        ``{model: tables}`` as :func:`render_report` takes them, pooled over every fold, best
        model first; shown with their role (``mean (baseline)``).

    Returns
    -------
    str
        The page (:func:`render_report`); a short page saying so when no model has results.
    """
    notes = [
        tables.description,
        f"{tables.n_folds} fold{'s' if tables.n_folds != 1 else ''}; values pooled over the units of every fold "
        "(the leaderboard averages per fold first). Baseline models are marked (baseline), "
        "other groups' models run through their own packages (peer); "
        "the ceiling is real data predicting itself (split halves).",
    ]
    timing = tables.timings
    issues = timing[~timing["status"].astype(str).isin(["ok", "nan"])]
    for (model, status), group in issues.groupby(["model", "status"], sort=True):
        folds = ", ".join(map(str, group["fold"]))
        notes.append(
            f"{model}: {status} in {len(group)} fold(s) ({folds}) — {group['reason'].iloc[0]}"
        )
    if not models:
        return (
            "<!DOCTYPE html><html><body><h1>"
            f"{tables.suite}</h1><p>No model produced results.</p></body></html>"
        )
    labelled = {tables.label(model).strip("*"): t for model, t in models.items()}
    return render_report(
        labelled,
        title=f"celltwin benchmark: {tables.suite} (v{tables.version})",
        notes=notes,
        verdicts=tables.verdicts,
        unit="fold",
    )
