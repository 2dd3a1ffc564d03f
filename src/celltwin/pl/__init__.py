"""Plots: figures and pages built from result tables (composition, effects, metrics, reports)."""

from ._evaluation import evaluation_notes, evaluation_report, write_evaluation
from ._figures import composition, effect_heatmap
from ._report import delta_scatter, figure_svg, metric_distributions, render_report

__all__ = [
    "composition",
    "delta_scatter",
    "effect_heatmap",
    "evaluation_notes",
    "evaluation_report",
    "figure_svg",
    "metric_distributions",
    "render_report",
    "write_evaluation",
]
