"""Plots and pages: figures, HTML reports and leaderboards built from result tables."""

from ._dose import dose_curves
from ._evaluation import (
    REPORT_FILE,
    evaluation_notes,
    evaluation_report,
    evaluation_text,
    write_evaluation,
)
from ._explain_figures import activity_figure, path_network
from ._explain_report import explanation_report, write_explanation
from ._figures import composition, effect_heatmap
from ._headline import HEADLINE_SIZE, ceiling_notes, headline, headline_html
from ._leaderboard import LeaderboardTables, leaderboard_html
from ._leaderboard_markdown import leaderboard_markdown
from ._report import identical_models, render_report
from ._report_figures import delta_scatter, figure_svg, metric_distributions
from ._screen import screen_report, twin_figure, write_screen

__all__ = [
    "HEADLINE_SIZE",
    "REPORT_FILE",
    "LeaderboardTables",
    "activity_figure",
    "ceiling_notes",
    "composition",
    "delta_scatter",
    "dose_curves",
    "effect_heatmap",
    "evaluation_notes",
    "evaluation_report",
    "evaluation_text",
    "explanation_report",
    "figure_svg",
    "headline",
    "headline_html",
    "identical_models",
    "leaderboard_html",
    "leaderboard_markdown",
    "metric_distributions",
    "path_network",
    "render_report",
    "screen_report",
    "twin_figure",
    "write_evaluation",
    "write_explanation",
    "write_screen",
]
