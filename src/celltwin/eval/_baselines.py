"""The two floors every model is scored next to, with exactly the same metrics.

- *control*: the truth's control cells predicted for every perturbation.
- *mean* (given training data): cell-eval's VCC baseline, every perturbation predicted as ``n``
  copies of the equal-weight mean of the training centroids (``n`` = its true cell count). Its
  rank-sum DE test is computed in closed form (:func:`constant_group_de`), exactly what the test
  gives on materialised copies, without materialising them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._context import CELL_INPUTS, MAX_CELLS, PRED_DE, ContextData, Shared, needs_of, sample_rows
from ._de import DEResult
from ._de_constant import constant_group_de
from ._matrix import rows
from ._plan import Plan
from ._scores import mean_of_centroids

__all__ = ["control_baseline_fields", "mean_baseline_fields"]


def mean_baseline_fields(plan: Plan, ctx: ContextData, shared: Shared) -> dict[str, Any]:
    """cell-eval's baseline: n_p copies of the mean of the training centroids, true controls."""
    assert plan.train is not None
    X, units, contexts = plan.train
    idx = np.flatnonzero(contexts == ctx.context)
    if idx.size == 0:  # unseen context: the training data of every context
        idx = np.arange(X.shape[0])
    profile = mean_of_centroids(rows(X, idx), units[idx])
    n_perts = ctx.perts.size
    fields: dict[str, Any] = {
        "pred_means": np.repeat(profile[None, :], n_perts, axis=0),
        "pred_control": shared.fields["true_control"],
    }
    needs = needs_of(plan.metrics)
    if needs & PRED_DE:
        control = rows(ctx.true_X, shared.control_rows)
        fields["pred_de"] = constant_group_de(
            np.repeat(profile[None, :], n_perts, axis=0),
            control,
            n_cells=shared.n_cells,
            groups=ctx.perts,
        )
    if needs & CELL_INPUTS:
        point = shared.basis.transform(profile[None, :])
        fields["pred_cells"] = tuple(
            np.repeat(point, min(int(n), MAX_CELLS), axis=0) for n in shared.n_cells
        )
    return fields


def control_baseline_fields(plan: Plan, ctx: ContextData, shared: Shared) -> dict[str, Any]:
    """The truth's control cells predicted for every perturbation (and as the control)."""
    n_perts = ctx.perts.size
    control_mean = shared.fields["true_control"]
    fields: dict[str, Any] = {
        "pred_means": np.repeat(control_mean[None, :], n_perts, axis=0),
        "pred_control": control_mean,
    }
    needs = needs_of(plan.metrics)
    if needs & PRED_DE:
        # Each predicted group *is* the control sample, so the rank-sum test compares identical
        # samples: U = n^2 / 2 exactly, p = 1 (the continuity correction pushes z below 0), and
        # the log fold change is 0. Written out instead of testing 2P copies of the controls.
        n_c = shared.control_rows.size
        shape = (n_perts, plan.genes.size)
        fields["pred_de"] = DEResult(
            groups=ctx.perts,
            n_cells=np.full(n_perts, n_c, dtype=np.int64),
            n_control=int(n_c),
            log2_fold_change=np.zeros(shape),
            pvalue=np.ones(shape),
            fdr=np.ones(shape),
            statistic=np.full(shape, n_c * n_c / 2.0),
            method="wilcoxon",
        )
    if needs & CELL_INPUTS:
        idx = sample_rows(shared.control_rows, 0, max_cells=MAX_CELLS, seed=plan.seed)
        cells = shared.basis.transform(rows(ctx.true_X, idx))
        fields["pred_cells"] = tuple(cells for _ in range(n_perts))
    return fields
