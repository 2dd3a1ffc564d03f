"""Plots and pages: figures, HTML reports and leaderboards built from result tables."""

from ._evaluation import evaluation_notes, evaluation_report, write_evaluation
from ._figures import composition, effect_heatmap
from ._leaderboard import LeaderboardTables, leaderboard_html
from ._leaderboard_markdown import leaderboard_markdown
from ._report import render_report
from ._report_figures import delta_scatter, figure_svg, metric_distributions

__all__ = [
    "LeaderboardTables",
    "composition",
    "delta_scatter",
    "effect_heatmap",
    "evaluation_notes",
    "evaluation_report",
    "figure_svg",
    "leaderboard_html",
    "leaderboard_markdown",
    "metric_distributions",
    "render_report",
    "write_evaluation",
]
