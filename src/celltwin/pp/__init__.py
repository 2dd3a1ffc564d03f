"""Preprocessing: normalisation, cell-type annotation, pseudobulk effects."""

from .._normalize import log_normalize
from ._annotate import annotate_cell_types
from ._groups import iter_groups, read_cells, read_obs, read_var
from ._markers import PBMC_MARKERS, read_markers
from ._pseudobulk import pseudobulk

__all__ = [
    "PBMC_MARKERS",
    "annotate_cell_types",
    "iter_groups",
    "log_normalize",
    "pseudobulk",
    "read_cells",
    "read_markers",
    "read_obs",
    "read_var",
]
