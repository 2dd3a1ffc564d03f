"""Preprocessing: normalisation, cell-type annotation, pseudobulk effects."""

from ._normalize import log_normalize

__all__ = ["log_normalize"]
