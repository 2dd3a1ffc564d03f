"""Preprocessing: normalisation, cell-type annotation, pseudobulk effects."""

from ._normalize import log_normalize
from ._pseudobulk import pseudobulk

__all__ = ["log_normalize", "pseudobulk"]
