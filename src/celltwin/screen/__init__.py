"""In-silico experiments: screens, combinations and dose-response over any fitted model."""

from ._combinations import (
    ADDITIVE_TOLERANCE,
    INTERACTION_COLUMNS,
    compare_interactions,
    interactions,
    observed_interactions,
)
from ._dose import HILL_COLUMNS, DoseResponseResult, dose_response, fit_hill, hill

__all__ = [
    "ADDITIVE_TOLERANCE",
    "HILL_COLUMNS",
    "INTERACTION_COLUMNS",
    "DoseResponseResult",
    "compare_interactions",
    "dose_response",
    "fit_hill",
    "hill",
    "interactions",
    "observed_interactions",
]
