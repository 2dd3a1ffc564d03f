"""One context of an evaluation: its rows, and what the truth and the model contribute to the
:class:`~celltwin.eval.MetricInputs` of every side scored there.

Everything the truth contributes (group means, its DE test, top DE genes, a PCA space) is
computed once per context (:func:`truth_inputs`) and shared by the model and both baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .._keys import CONTROL
from .._progress import timed
from ._de import DEResult, _code_sums, rank_sum_test
from ._de_welch import welch_top_de
from ._inputs import target_gene_mask
from ._matrix import rows, vstack
from ._metrics_cells import fit_pca
from ._plan import Plan
from ._registry import Metric
from ._scores import mean_of_centroids
from ._units import split_unit

__all__ = [
    "CELL_INPUTS",
    "MAX_CELLS",
    "N_PCS",
    "N_TOP_DE",
    "PRED_DE",
    "ContextData",
    "Shared",
    "model_fields",
    "needs_of",
    "ordered_group_means",
    "sample_rows",
    "truth_inputs",
]

#: GEARS' number of top DE genes (``pearson_delta_top20_de``, ``mse_top20_de``).
N_TOP_DE = 20
#: PCA components and cells per perturbation for the distributional metrics (as build_inputs).
N_PCS = 50
MAX_CELLS = 500
#: Inputs that need the truth's DE, the prediction's DE, or cells.
TRUE_DE = frozenset({"true_de", "true_lfc", "true_fdr"})
PRED_DE = frozenset({"pred_de", "pred_lfc", "pred_fdr"})
CELL_INPUTS = frozenset({"pred_cells", "true_cells"})


@dataclass
class ContextData:
    """Rows of one context: the truth (evaluated perturbations + control) and the prediction."""

    context: str
    perts: NDArray[np.str_]
    true_X: Any
    true_labels: NDArray[np.str_]
    pred_X: Any  # prediction rows (cells, or profiles), evaluated perturbations (+ its control)
    pred_labels: NDArray[np.str_]

    @classmethod
    def build(cls, plan: Plan, context: str) -> ContextData:
        """The rows of ``context`` in ``plan``."""
        perts = plan.perturbations[context]
        wanted = np.append(perts, CONTROL)
        t_rows = np.flatnonzero((plan.truth_context == context) & np.isin(plan.truth_units, wanted))
        p_rows = np.flatnonzero((plan.pred_context == context) & np.isin(plan.pred_units, wanted))
        return cls(
            context=context,
            perts=perts,
            true_X=rows(plan.truth_X, t_rows),
            true_labels=plan.truth_units[t_rows],
            pred_X=rows(plan.pred_X, p_rows),
            pred_labels=plan.pred_units[p_rows],
        )


@dataclass
class Shared:
    """What the truth contributes to every side's :class:`MetricInputs`, plus helpers."""

    fields: dict[str, Any]
    n_cells: NDArray[np.int64]  # true cells per perturbation
    control_rows: NDArray[np.intp]  # rows of ctx.true_X holding control cells
    basis: Any  # PCA basis for the cells metrics, or None
    true_de: DEResult | None


def needs_of(metrics: Sequence[Metric]) -> set[str]:
    """Every input the metrics need."""
    return set().union(*(m.needs for m in metrics))


def ordered_group_means(
    X: Any, labels: NDArray[np.str_], groups: NDArray[np.str_]
) -> NDArray[np.float64]:
    """Mean row of each label in ``groups`` (in that order), float64."""
    position = {g: i for i, g in enumerate(groups.tolist())}
    codes = np.array([position.get(label, -1) for label in labels.tolist()], dtype=np.int64)
    keep = np.flatnonzero(codes >= 0)
    if sp.issparse(X):
        # Float64 sums straight from the stored values (compiled, one pass, no float64 copy).
        sums = _code_sums(X, codes, groups.size)
    else:
        indicator = sp.csr_matrix(
            (np.ones(keep.size), (codes[keep], keep)), shape=(groups.size, labels.size)
        )
        sums = np.asarray(indicator @ np.asarray(X, dtype=np.float64))
    counts = np.bincount(codes[keep], minlength=groups.size).astype(np.float64)
    # A group without rows (no predicted controls) is NaN; callers use the truth's instead.
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums / counts[:, None]


def sample_rows(idx: NDArray[np.intp], i: int, *, max_cells: int | None, seed: int) -> NDArray:
    """At most ``max_cells`` of ``idx`` by the stream ``(seed, i)``, as build_inputs draws them."""
    if max_cells is not None and idx.size > max_cells:
        rng = np.random.default_rng((seed, i))
        idx = np.sort(rng.choice(idx, max_cells, replace=False))
    return idx


def systema_reference(plan: Plan, context: str) -> NDArray[np.float64]:
    """Systema reference: mean of the training perturbation centroids of the context (else all)."""
    assert plan.train is not None
    X, units, contexts = plan.train
    idx = np.flatnonzero((contexts == context) & (units != CONTROL))
    if idx.size == 0:
        idx = np.flatnonzero(units != CONTROL)
    if idx.size == 0:
        raise ValueError(
            "train has no perturbed cells, so there is no Systema reference; pass training "
            "data holding perturbed cells"
        )
    return mean_of_centroids(rows(X, idx), units[idx])


def truth_inputs(plan: Plan, ctx: ContextData) -> Shared:
    """What the truth of one context gives every side: means, its DE, top DE genes, PCA space."""
    needs = needs_of(plan.metrics)
    perts = ctx.perts
    with timed("truth: group means"):
        means = ordered_group_means(ctx.true_X, ctx.true_labels, np.append(perts, CONTROL))
    control_rows = np.flatnonzero(ctx.true_labels == CONTROL)
    n_cells = np.array([np.count_nonzero(ctx.true_labels == p) for p in perts], dtype=np.int64)
    fields: dict[str, Any] = {
        "perturbations": perts,
        "genes": plan.genes,
        "true_means": means[:-1],
        "true_control": means[-1],
        "target_mask": target_gene_mask([split_unit(p)[0] for p in perts], plan.genes),
    }
    if "reference" in needs:
        fields["reference"] = systema_reference(plan, ctx.context)
    true_de = None
    if needs & TRUE_DE:
        with timed("truth: rank-sum test"):
            true_de = rank_sum_test(ctx.true_X, ctx.true_labels, control=CONTROL).select(perts)
        fields["true_de"] = true_de
    if "top_de" in needs:
        with timed("truth: Welch t-test"):
            fields["top_de"] = welch_top_de(
                ctx.true_X, ctx.true_labels, perts, control=CONTROL, k=N_TOP_DE
            )
    basis = None
    if needs & CELL_INPUTS:
        with timed("truth: PCA of cells"):
            basis = _truth_cells(plan, ctx, fields)
    return Shared(
        fields=fields, n_cells=n_cells, control_rows=control_rows, basis=basis, true_de=true_de
    )


def _truth_cells(plan: Plan, ctx: ContextData, fields: dict[str, Any]) -> Any:
    """The PCA basis of the sampled true cells; sets ``fields["true_cells"]``."""
    seed, perts = plan.seed, ctx.perts
    # As build_inputs: PCA on the sampled true cells (perturbed and control), true data only,
    # so every side is compared in the same space.
    groups = [*perts.tolist(), CONTROL]
    sets = [
        sample_rows(np.flatnonzero(ctx.true_labels == p), i, max_cells=MAX_CELLS, seed=seed)
        for i, p in enumerate(groups)
    ]
    stacked = rows(ctx.true_X, np.concatenate(sets))
    basis = fit_pca(stacked, n_components=N_PCS, seed=seed)
    fields["true_cells"] = tuple(basis.transform(rows(ctx.true_X, s)) for s in sets[:-1])
    return basis


def model_fields(plan: Plan, ctx: ContextData, shared: Shared) -> dict[str, Any]:
    """The prediction's fields of :class:`MetricInputs` in one context (means, DE, cells)."""
    needs = needs_of(plan.metrics)
    perts = ctx.perts
    has_control = bool((ctx.pred_labels == CONTROL).any())
    with timed("prediction: group means"):
        means = ordered_group_means(ctx.pred_X, ctx.pred_labels, np.append(perts, CONTROL))
    fields: dict[str, Any] = {
        "pred_means": means[:-1],
        "pred_control": means[-1] if has_control else shared.fields["true_control"],
    }
    if plan.pred_is_pseudobulk:
        return fields
    pert_rows = np.flatnonzero(ctx.pred_labels != CONTROL)
    if needs & PRED_DE:
        if has_control:
            X, labels = ctx.pred_X, ctx.pred_labels
        else:
            # No predicted controls: test against the truth's, as the VCC's files include them.
            X = vstack(rows(ctx.pred_X, pert_rows), rows(ctx.true_X, shared.control_rows))
            labels = np.append(ctx.pred_labels[pert_rows], ctx.true_labels[shared.control_rows])
        with timed("prediction: rank-sum test"):
            fields["pred_de"] = rank_sum_test(X, labels, control=CONTROL).select(perts)
    if needs & CELL_INPUTS:
        fields["pred_cells"] = tuple(
            shared.basis.transform(
                rows(
                    ctx.pred_X,
                    sample_rows(
                        np.flatnonzero(ctx.pred_labels == p),
                        i,
                        max_cells=MAX_CELLS,
                        seed=plan.seed,
                    ),
                )
            )
            for i, p in enumerate(perts.tolist())
        )
    return fields
