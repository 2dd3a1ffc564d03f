"""What metrics are computed from: :class:`MetricInputs`, and :func:`build_inputs` from cells.

Each field of :class:`MetricInputs` belongs to one kind of input (:data:`INPUT_KINDS`:
pseudobulk, de, cells, ranks, reference, interaction), so a caller computes only what the chosen
metrics need: DE tests only for ``de`` metrics, a PCA only for ``cells`` metrics.
:func:`build_inputs` turns predicted and true cell matrices into :class:`MetricInputs` (every kind
but ``interaction``); it works on arrays, no AnnData.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .._keys import CONTROL, split_combination
from ._de import DEResult, rank_sum_test
from ._de_welch import welch_top_de
from ._matrix import is_sparse
from ._metrics_cells import fit_pca

__all__ = [
    "CELL_KINDS",
    "INPUT_KINDS",
    "NEEDS_PRED_CELLS",
    "MetricInputs",
    "build_inputs",
    "group_means",
    "target_gene_mask",
]

Kind = Literal["pseudobulk", "de", "cells", "ranks", "reference", "interaction"]

#: Kind of every input a metric can need (a :class:`MetricInputs` field or derived value).
INPUT_KINDS: Mapping[str, Kind] = {
    "pred_means": "pseudobulk",
    "true_means": "pseudobulk",
    "pred_control": "pseudobulk",
    "true_control": "pseudobulk",
    "pred_delta": "pseudobulk",
    "true_delta": "pseudobulk",
    "target_mask": "pseudobulk",
    "reference": "reference",
    "true_de": "de",
    "pred_de": "de",
    "true_lfc": "de",
    "true_fdr": "de",
    "pred_lfc": "de",
    "pred_fdr": "de",
    "top_de": "de",
    "pred_cells": "cells",
    "true_cells": "cells",
    "pred_scores": "ranks",
    "true_scores": "ranks",
    "pred_interaction": "interaction",
    "true_interaction": "interaction",
    "additive": "interaction",
}

#: Input kinds :func:`build_inputs` computes from cells (all but ``interaction``, which needs
#: the true interactions of combinations, e.g. from :func:`celltwin.simulate.simulate`).
CELL_KINDS: frozenset[str] = frozenset({"pseudobulk", "de", "cells", "ranks", "reference"})

#: Metric inputs that only a cells prediction provides (not a pseudobulk one).
NEEDS_PRED_CELLS: frozenset[str] = frozenset({"pred_de", "pred_lfc", "pred_fdr", "pred_cells"})


def target_gene_mask(perturbations: ArrayLike, genes: ArrayLike) -> NDArray[np.bool_]:
    """``(P, G)`` mask of each perturbation's target genes (every component of a combination).

    cell-eval excludes the gene whose name equals the perturbation label; for a canonical
    combination ``A+B`` that matches nothing there, while here both ``A`` and ``B`` are excluded.
    """
    genes = np.asarray(genes).astype(str)
    position = {g: j for j, g in enumerate(genes.tolist())}
    perts = np.asarray(perturbations).astype(str)
    mask = np.zeros((perts.size, genes.size), dtype=bool)
    for i, p in enumerate(perts.tolist()):
        for target in split_combination(p):
            j = position.get(target)
            if j is not None:
                mask[i, j] = True
    return mask


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class MetricInputs:
    """Everything a metric can be computed from, for ``P`` perturbations and ``G`` genes.

    Only the fields the chosen metrics need must be set. Derived values (``pred_delta``,
    ``true_delta``, the DE arrays, default ``target_mask`` and rank scores) are resolved by
    :meth:`get`.

    Attributes
    ----------
    perturbations, genes
        Row and column labels.
    pred_means, true_means
        ``(P, G)`` pseudobulk profiles (mean log1p expression).
    true_control, pred_control
        ``(G,)`` control means; ``pred_control`` defaults to ``true_control``. cell-eval takes
        each file's own control; GEARS the true control on both sides.
    target_mask
        ``(P, G)`` genes excluded from PDS; default :func:`target_gene_mask`.
    reference
        ``(G,)`` Systema reference: mean of the training perturbations' centroids.
    true_de, pred_de
        DE of each side's perturbations against its control (:func:`rank_sum_test`), rows in
        ``perturbations`` order.
    top_de
        ``(P, k)`` indices of each perturbation's top DE genes in the truth (GEARS: 20 by Welch t).
    pred_cells, true_cells
        Per perturbation, its cells in a shared PCA space (tuples of ``(n_i, d)`` arrays).
    pred_scores, true_scores
        ``(P, G)`` gene scores for rank metrics; default the deltas. True scores may be NaN for
        genes outside a signature.
    pred_interaction, true_interaction, additive
        ``(P, G)`` for combinations: predicted and true interaction (effect minus the sum of
        its parts' effects) and the additive expectation the prediction's interaction is
        measured from (see :func:`~celltwin.eval.interaction_pearson`).
    """

    perturbations: NDArray[np.str_]
    genes: NDArray[np.str_]
    pred_means: NDArray[np.float64] | None = None
    true_means: NDArray[np.float64] | None = None
    true_control: NDArray[np.float64] | None = None
    pred_control: NDArray[np.float64] | None = None
    target_mask: NDArray[np.bool_] | None = None
    reference: NDArray[np.float64] | None = None
    true_de: DEResult | None = None
    pred_de: DEResult | None = None
    top_de: NDArray[np.int64] | None = None
    pred_cells: tuple[NDArray[np.float64], ...] | None = None
    true_cells: tuple[NDArray[np.float64], ...] | None = None
    pred_scores: NDArray[np.float64] | None = None
    true_scores: NDArray[np.float64] | None = None
    pred_interaction: NDArray[np.float64] | None = None
    true_interaction: NDArray[np.float64] | None = None
    additive: NDArray[np.float64] | None = None

    def get(self, name: str) -> Any:
        """Return input ``name``, derived from other fields where needed.

        Raises ``ValueError`` naming the missing field when it cannot be resolved.
        """
        if name in _DERIVED:
            return _DERIVED[name](self)
        value = getattr(self, name, None) if name in _FIELDS else None
        if name not in _FIELDS:
            raise KeyError(f"unknown metric input {name!r}; known: {sorted(INPUT_KINDS)}")
        if value is None:
            raise ValueError(
                f"metric input {name!r} is not set; pass {name}=... to MetricInputs "
                f"(or build_inputs with kinds including {INPUT_KINDS.get(name, name)!r})"
            )
        return value


_FIELDS = {f.name for f in fields(MetricInputs)}


def _pred_control(x: MetricInputs) -> NDArray[np.float64]:
    return x.pred_control if x.pred_control is not None else x.get("true_control")


def _de_field(side: str, attr: str) -> Callable[[MetricInputs], NDArray[np.float64]]:
    def get(x: MetricInputs) -> NDArray[np.float64]:
        return getattr(x.get(f"{side}_de"), attr)

    return get


_DERIVED: dict[str, Callable[[MetricInputs], Any]] = {
    "pred_control": _pred_control,
    "pred_delta": lambda x: x.get("pred_means") - _pred_control(x)[None, :],
    "true_delta": lambda x: x.get("true_means") - x.get("true_control")[None, :],
    "target_mask": lambda x: (
        x.target_mask if x.target_mask is not None else target_gene_mask(x.perturbations, x.genes)
    ),
    "pred_scores": lambda x: x.pred_scores if x.pred_scores is not None else x.get("pred_delta"),
    "true_scores": lambda x: x.true_scores if x.true_scores is not None else x.get("true_delta"),
    "true_lfc": _de_field("true", "log2_fold_change"),
    "true_fdr": _de_field("true", "fdr"),
    "pred_lfc": _de_field("pred", "log2_fold_change"),
    "pred_fdr": _de_field("pred", "fdr"),
}


def group_means(
    X: ArrayLike | sp.spmatrix, labels: ArrayLike
) -> tuple[NDArray[np.str_], NDArray[np.float64]]:
    """Sorted labels and the mean profile (float64) of each label's cells."""
    lab = np.asarray(labels).astype(str)
    uniq, inv = np.unique(lab, return_inverse=True)
    indicator = sp.csr_matrix(
        (np.ones(inv.size), (inv, np.arange(inv.size))), shape=(uniq.size, inv.size)
    )
    x = X.astype(np.float64) if is_sparse(X) else np.asarray(X, dtype=np.float64)
    sums = indicator @ x
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    return uniq, sums / np.bincount(inv)[:, None]


def _rows(X: ArrayLike | sp.spmatrix, mask: NDArray[np.bool_]) -> ArrayLike | sp.spmatrix:
    return X[np.flatnonzero(mask)] if is_sparse(X) else np.asarray(X)[mask]


def build_inputs(
    pred_X: ArrayLike | sp.spmatrix,
    true_X: ArrayLike | sp.spmatrix,
    *,
    pred_labels: ArrayLike,
    true_labels: ArrayLike,
    genes: ArrayLike,
    kinds: Collection[str] = ("pseudobulk", "de"),
    control: str = CONTROL,
    reference: ArrayLike | None = None,
    true_de: DEResult | None = None,
    n_top_de: int = 20,
    n_pcs: int = 50,
    max_cells: int | None = 500,
    seed: int = 0,
) -> MetricInputs:
    """Compute the inputs of the requested kinds from predicted and true cells.

    Perturbations are the truth's non-control labels (sorted); the prediction must have cells for
    each. The predicted control mean comes from the prediction's control cells when it has any,
    otherwise from the truth's.

    Parameters
    ----------
    pred_X, pred_labels, true_X, true_labels
        Cells x genes (log1p expression) and the perturbation label of each cell.
    genes
        Gene names (columns of both matrices).
    kinds
        Which input kinds to compute (see :data:`INPUT_KINDS`); ``"reference"`` needs
        ``reference``; ``"ranks"`` uses the deltas.
    control
        Control label.
    reference
        Systema reference profile (mean of training perturbation centroids).
    true_de
        Precomputed DE of the truth (reused, e.g. across models); computed when None.
    n_top_de
        Top DE genes per perturbation for the GEARS metrics (by ``|t|`` of a Welch t-test).
    n_pcs, max_cells, seed
        Cells kinds: PCA fitted on the true cells (perturbed and control) with ``n_pcs``
        components; at most ``max_cells`` cells per perturbation and side (random, seeded) enter
        the fit and the distances, which are quadratic in cells.
    """
    kinds = set(kinds)
    unknown = kinds - CELL_KINDS
    if unknown:
        raise ValueError(f"unknown input kinds {sorted(unknown)}; choose from {sorted(CELL_KINDS)}")
    genes = np.asarray(genes).astype(str)
    for name, x in (("pred_X", pred_X), ("true_X", true_X)):
        n_columns = np.shape(x)[1]
        if n_columns != genes.size:
            raise ValueError(f"{name} has {n_columns} columns but {genes.size} genes were given")
    pred_lab = np.asarray(pred_labels).astype(str)
    true_lab = np.asarray(true_labels).astype(str)
    values = _pseudobulk_fields(pred_X, true_X, pred_lab, true_lab, control=control)
    values["genes"] = genes
    perts = values["perturbations"]
    if "reference" in kinds:
        if reference is None:
            raise ValueError("input kind 'reference' needs reference=<mean of training centroids>")
        values["reference"] = np.asarray(reference, dtype=np.float64)
    if "de" in kinds:
        if values["pred_control"] is None:
            raise ValueError(
                f"DE of the prediction needs its own {control!r} cells (as cell-eval does); "
                "add control cells to the prediction"
            )
        keep_pred = np.isin(pred_lab, np.append(perts, control))
        values["pred_de"] = rank_sum_test(
            _rows(pred_X, keep_pred), pred_lab[keep_pred], control=control
        ).select(perts)
        if true_de is None:
            true_de = rank_sum_test(true_X, true_lab, control=control)
        values["true_de"] = true_de.select(perts)
        values["top_de"] = welch_top_de(true_X, true_lab, perts, control=control, k=n_top_de)
    if "cells" in kinds:
        sides = (pred_X, pred_lab), (true_X, true_lab)
        cells = _cells_fields(*sides, perts, control, n_pcs=n_pcs, max_cells=max_cells, seed=seed)
        values.update(cells)
    return MetricInputs(**values)


def _pseudobulk_fields(
    pred_X: ArrayLike | sp.spmatrix,
    true_X: ArrayLike | sp.spmatrix,
    pred_lab: NDArray[np.str_],
    true_lab: NDArray[np.str_],
    *,
    control: str,
) -> dict[str, Any]:
    """Perturbations (the truth's, sorted), both sides' means and control means."""
    true_groups, true_all = group_means(true_X, true_lab)
    if control not in true_groups:
        raise ValueError(f"the truth has no {control!r} cells; pass control=<its control label>")
    perts = true_groups[true_groups != control]
    pred_groups, pred_all = group_means(pred_X, pred_lab)
    missing = np.setdiff1d(perts, pred_groups)
    if missing.size:
        raise ValueError(
            f"the prediction has no cells for {missing.size} perturbations "
            f"(e.g. {missing[:5].tolist()}); predict every perturbation of the truth"
        )
    pred_rows = np.searchsorted(pred_groups, perts)
    pred_control = (
        pred_all[np.flatnonzero(pred_groups == control)[0]] if control in pred_groups else None
    )
    return {
        "perturbations": perts,
        "pred_means": pred_all[pred_rows],
        "true_means": true_all[true_groups != control],
        "true_control": true_all[np.flatnonzero(true_groups == control)[0]],
        "pred_control": pred_control,
    }


def _cells_fields(
    pred: tuple[ArrayLike | sp.spmatrix, NDArray[np.str_]],
    true: tuple[ArrayLike | sp.spmatrix, NDArray[np.str_]],
    perts: NDArray[np.str_],
    control: str,
    *,
    n_pcs: int,
    max_cells: int | None,
    seed: int,
) -> dict[str, tuple[NDArray[np.float64], ...]]:
    """Sampled cells of each perturbation, both sides, in a PCA space fitted on the truth."""

    def sample(x: Any, lab: NDArray[np.str_], i: int, p: str) -> Any:
        # One stream per perturbation, the same for both sides: identical data draws the
        # same cells, so it scores exactly 0.
        idx = np.flatnonzero(lab == p)
        if max_cells is not None and idx.size > max_cells:
            rng = np.random.default_rng((seed, i))
            idx = np.sort(rng.choice(idx, max_cells, replace=False))
        return x[idx]

    groups = [*perts.tolist(), control]
    true_sets = [sample(*true, i, p) for i, p in enumerate(groups)]
    stacked = sp.vstack(true_sets) if sp.issparse(true[0]) else np.vstack(true_sets)
    basis = fit_pca(stacked, n_components=n_pcs, seed=seed)
    return {
        "true_cells": tuple(basis.transform(s) for s in true_sets[:-1]),
        "pred_cells": tuple(
            basis.transform(sample(*pred, i, p)) for i, p in enumerate(perts.tolist())
        ),
    }
