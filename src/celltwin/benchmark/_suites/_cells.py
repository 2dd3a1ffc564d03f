"""Registering a cell suite: a :class:`CellTask` becomes a :class:`Suite` whose ``run_fold``
runs the fold in this process (:func:`celltwin.benchmark._folds.run_cell_fold`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .._folds import run_cell_fold
from ._cell_task import CellTask
from ._registry import Suite, register_suite


def _run_fold_of(task: CellTask) -> Callable[..., pd.DataFrame]:
    def run_fold(
        fold: str,
        *,
        models: Sequence[str] | None = None,
        seed: int = 0,
        progress: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """Results of one fold (:data:`RESULT_COLUMNS`), every model fitted in this process."""
        return run_cell_fold(task, fold, models=models, seed=seed, **options)

    return run_fold


def register_cell_suite(task: CellTask, *, version: str, description: str, data: str) -> Suite:
    """Register ``task`` as the cell suite of its name (smoke option: ``smoke=True``)."""
    return register_suite(
        Suite(
            name=task.name,
            version=version,
            description=description,
            kind="cells",
            folds=task.folds,
            run_fold=_run_fold_of(task),
            models=task.models,
            metrics=task.metrics,
            data=data,
            options=dict(task.defaults),
            smoke={"smoke": True},
            task=task,
        )
    )
