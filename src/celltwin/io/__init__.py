"""Reading, writing and validating data: the field's conventions in, canonical celltwin data out.

:func:`read` opens an ``.h5ad`` file in any registered convention (:data:`CONVENTIONS`: celltwin,
vcc, gears, scperturb, scgen, or your own columns) and returns canonical AnnData (names in
:mod:`celltwin._keys`); :func:`write` / :func:`from_canonical` produce the other layouts.
:func:`validate` raises, :func:`check` lists problems, :func:`describe` summarises a dataset
and :func:`describe_split` a split stored in it.
"""

from ._conventions import CONVENTIONS, Convention, Layout
from ._describe import DatasetSummary, describe
from ._dose import format_dose, parse_dose
from ._expression import (
    LOG_MAX,
    MatrixStats,
    check_expression,
    expression_problems,
    matrix_stats,
)
from ._info import info
from ._prepare import prepare
from ._problems import Problem, ValidationError
from ._rank_signatures import Ranking, RankSignatures, concat_signatures
from ._read import detect_convention, from_canonical, read, to_canonical, write
from ._signatures import read_signatures, write_signatures
from ._splits import SplitSummary, describe_split, split_counts, split_params
from ._validate import check, validate

__all__ = [
    "CONVENTIONS",
    "LOG_MAX",
    "Convention",
    "DatasetSummary",
    "Layout",
    "MatrixStats",
    "Problem",
    "RankSignatures",
    "Ranking",
    "SplitSummary",
    "ValidationError",
    "check",
    "check_expression",
    "concat_signatures",
    "describe",
    "describe_split",
    "detect_convention",
    "expression_problems",
    "format_dose",
    "from_canonical",
    "info",
    "matrix_stats",
    "parse_dose",
    "prepare",
    "read",
    "read_signatures",
    "split_counts",
    "split_params",
    "to_canonical",
    "validate",
    "write",
    "write_signatures",
]
