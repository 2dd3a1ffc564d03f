"""The benchmark suites: the :class:`Suite` definition and registry, and one module per family.

``_registry``
    :class:`Suite`, :func:`register_suite`, :func:`get_suite`, :func:`suites`.
``_cell_task``
    :class:`CellTask`: how the runner builds, fits and scores one fold of a cell suite.
``_kang``, ``_papalexi``, ``_simulated``
    The cell-suite families (Kang 2018 PBMCs, Papalexi 2021 knockouts, simulated knockouts,
    combinations and doses).
``_signatures``
    The signature (context-transfer) family, built on ``_transfer`` (splits, one fold) and
    ``_rank_scores`` (signature scores and rank metrics).

The family modules register their suites when imported; :mod:`celltwin.benchmark` imports them.
This package's ``__init__`` imports nothing, so the runner's modules can import the registry and
:class:`CellTask` without importing the families (which import the runner to run a fold).
"""
