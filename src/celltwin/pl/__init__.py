"""Plots: figures built from result tables (composition, effects, metrics)."""

from ._figures import composition, effect_heatmap

__all__ = ["composition", "effect_heatmap"]
