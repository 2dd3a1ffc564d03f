"""Plots: figures built from result tables (composition, effects, metrics)."""

from ._figures import composition, effect_heatmap
from ._report import delta_scatter, figure_svg, metric_distributions, render_report

__all__ = [
    "composition",
    "delta_scatter",
    "effect_heatmap",
    "figure_svg",
    "metric_distributions",
    "render_report",
]
