"""Where the model contract used to live; these names stay importable from here.

The contract is now split by responsibility: :mod:`._model` (the base of every model),
:mod:`._cell` (cell and pseudobulk models), :mod:`._conditions` (condition tables),
:mod:`._checks` (validation) and :mod:`._errors`. ``Model`` here is the cell-model base
(:class:`CellModel`), which ``models/_transition`` subclasses; import ``CellModel`` from
:mod:`._cell` in new code.
"""

from __future__ import annotations

from ._cell import CellKind as PredictionKind
from ._cell import CellModel
from ._cell import CellModel as Model
from ._checks import _check_log_space, _positive_int, is_genetic
from ._conditions import (
    N_CELLS,
    ConditionKey,
    as_conditions,
    conditions_of,
    dose_components,
)
from ._errors import ModelFormatError, NotFittedError, UnseenConditionError

__all__ = [
    "N_CELLS",
    "CellModel",
    "ConditionKey",
    "Model",
    "ModelFormatError",
    "NotFittedError",
    "PredictionKind",
    "UnseenConditionError",
    "_check_log_space",
    "_positive_int",
    "as_conditions",
    "conditions_of",
    "dose_components",
    "is_genetic",
]
