"""Benchmarks: versioned suites (data + splits + models + metrics), a runner, a leaderboard.

:func:`run_benchmark` runs a registered suite: on every fold each model is fitted on the fold's
training data only, predicts the held-out conditions and is scored, with its wall time and
peak memory; the results are written as ``leaderboard.csv``, ``results.csv``,
``leaderboard.md``, ``report.html`` and ``run.json``::

    from celltwin.benchmark import run_benchmark, suites
    board = run_benchmark("papalexi2021-heldout-ko", out="bench/papalexi")
    print(board.to_markdown())

Cell suites build each fold with :func:`make_fold` (genes selected on the training cells only,
the truth never handed to a model); signature suites predict ranked signatures of held-out
(context, perturbation) pairs.

Where things live: ``_runner`` (:func:`run_benchmark`: checks the call, runs the folds, writes
the files), ``_folds`` (one fold, every model), ``_model_run`` and ``_isolation`` (one model in
this process or in a fresh one), ``_measure`` (time and memory), ``_provenance`` (what
``run.json`` records), ``_scoring`` (metrics through :func:`celltwin.eval.evaluate` only),
``_aggregate`` and ``_leaderboard`` (per-fold rows, means over folds, comparisons; the pages are
laid out by :mod:`celltwin.pl`), ``_merge`` (runs combined), ``_features`` (leakage-safe folds)
and ``_suites/`` (the :class:`Suite` registry, :class:`CellTask` and one module per family).
"""

from ._aggregate import higher_is_better, role
from ._features import FoldData, make_fold, poison_held_out, select_genes
from ._leaderboard import Leaderboard
from ._merge import average_seeds, merge_runs
from ._model_run import predict_conditions
from ._runner import list_models, parse_options, run_benchmark

# The suite families register their suites when imported.
from ._suites import (  # noqa: F401
    _kang,
    _lincs,
    _mcfaline,
    _norman,
    _papalexi,
    _signatures,
    _simulated,
)
from ._suites._cell_task import CellTask
from ._suites._registry import RESULT_COLUMNS, Suite, get_suite, register_suite, suites

__all__ = [
    "RESULT_COLUMNS",
    "CellTask",
    "FoldData",
    "Leaderboard",
    "Suite",
    "average_seeds",
    "get_suite",
    "higher_is_better",
    "list_models",
    "make_fold",
    "merge_runs",
    "parse_options",
    "poison_held_out",
    "predict_conditions",
    "register_suite",
    "role",
    "run_benchmark",
    "select_genes",
    "suites",
]
