"""Benchmark suites as data: a named, versioned definition of data + splits + models + metrics.

A suite's ``run_fold`` does the work of one fold and returns per-unit scores in long format;
the runner (:mod:`celltwin.benchmark._runner`) loops over folds and models, aggregates, adds
confidence intervals, baselines and ceilings, and writes the leaderboard files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from ._cell_task import CellTask

#: Columns of the per-unit results a suite's ``run_fold`` returns (one row per model, unit
#: (context, perturbation) and metric). ``model`` may be a real model name or a reference
#: row: ``ceiling`` (split-half real-vs-real) where the suite computes one.
RESULT_COLUMNS: tuple[str, ...] = ("fold", "model", "context", "perturbation", "metric", "value")


@dataclass(frozen=True)
class Suite:
    """A registered benchmark suite.

    Parameters
    ----------
    name
        Suite name used on the command line (``celltwin benchmark NAME``).
    version
        Bumped whenever data, splits or metrics change, so old numbers are never compared with new.
    description
        One line.
    kind
        ``"cells"`` (single-cell data, models from :mod:`celltwin.models`) or ``"signatures"``.
    folds
        ``folds(**options) -> list[str]``: the fold names (e.g. held-out cell types).
    run_fold
        ``run_fold(fold, *, models, seed, progress, **options) -> DataFrame`` with
        :data:`RESULT_COLUMNS`.
    models
        Models run by default.
    metrics
        Metrics reported, the primary one first.
    data
        Dataset(s) the suite reads (registry names), for the record.
    options
        The options ``folds`` and ``run_fold`` accept, with their defaults.
    smoke
        Options for a tiny run of the suite (seconds): used by tests and ``--option smoke=true``.
    task
        Cell suites: the :class:`~celltwin.benchmark.CellTask` the runner uses to
        build each fold's data once, fit and predict each model on its own (timed, memory
        measured) and score the predictions. ``None``: the runner calls ``run_fold`` per model.
    """

    name: str
    version: str
    description: str
    kind: Literal["cells", "signatures"]
    folds: Callable[..., list[str]]
    run_fold: Callable[..., pd.DataFrame]
    models: Sequence[str]
    metrics: Sequence[str]
    data: str = ""
    options: dict[str, object] = field(default_factory=dict)
    smoke: dict[str, object] = field(default_factory=dict)
    task: CellTask | None = None

    @property
    def primary_metric(self) -> str:
        """The metric a suite is ranked by."""
        return self.metrics[0]


_SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Add a suite to the registry (names are unique)."""
    if suite.name in _SUITES:
        raise ValueError(f"suite {suite.name!r} is already registered")
    _SUITES[suite.name] = suite
    return suite


def get_suite(name: str) -> Suite:
    """Return the suite called ``name``, or raise naming the known suites."""
    try:
        return _SUITES[name]
    except KeyError:
        raise KeyError(
            f"unknown benchmark suite {name!r}; known suites: {sorted(_SUITES)}"
        ) from None


def suites() -> list[Suite]:
    """All registered suites, sorted by name."""
    return [_SUITES[k] for k in sorted(_SUITES)]
