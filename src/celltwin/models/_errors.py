"""The errors every model raises, defined below everything else so any module can use them."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before :meth:`Model.fit` (or :func:`load`)."""


class UnseenConditionError(ValueError):
    """Raised when a model is asked for a condition it cannot predict (never a silent guess)."""


class ModelFormatError(ValueError):
    """Raised when a saved model directory is damaged, truncated, tampered with or too new."""
