"""The errors every model raises, defined below everything else so any module can use them."""

from __future__ import annotations

from typing import Any


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before :meth:`Model.fit` (or :func:`load`)."""


class UnseenConditionError(ValueError):
    """Raised when a model is asked for a condition it cannot predict (never a silent guess)."""


class ModelFormatError(ValueError):
    """Raised when a saved model directory is damaged, truncated, tampered with or too new."""


class UnpredictableConditionsError(UnseenConditionError):
    """Raised when some requested conditions cannot be predicted; names every one and why.

    ``refusals`` is a DataFrame with one row per refused condition: ``condition``
    (``context:perturbation[:dose]``), ``context``, ``perturbation``, ``dose``, ``reason`` and
    ``suggestion`` (``""`` when there is none). :func:`celltwin.models.predict` with
    ``skip_unpredictable=True`` predicts the others and writes this table instead.
    """

    def __init__(self, message: str, refusals: Any) -> None:
        super().__init__(message)
        self.refusals = refusals
