"""Cell-type annotation that a perturbation cannot talk into another type.

A perturbation can switch off the very genes a type is recognised by: IFN-beta-stimulated CD14
monocytes lose CD14 and S100A8 and, scored on their own, look like FCGR3A+ monocytes. So the types
are decided on the unperturbed cells only ("anchors") and carried over to the perturbed cells
through an embedding in which the conditions have been aligned:

1. Embed all cells: highly variable genes (chosen per condition, genes that respond to the
   perturbation left out), z-scored, PCA; then a compact Harmony-style correction (Korsunsky et al.
   2019, Nat Methods 16:1289) removes the condition from the PCA while keeping the cell types apart.
2. Call the anchor cells, with one of
   - marker genes: over-cluster the anchors with k-means in the aligned embedding, average each
     marker within a cluster, scale each marker by its highest cluster mean, add positive and
     subtract negative markers; each anchor takes its cluster's best type;
   - a labelled reference: logistic regressions on the anchors' own PCA (every gene: nothing
     responds among unperturbed cells) in spaces of several gene and component numbers, averaged
     or not, with the penalty and the averaging chosen by cross-validation on the reference
     labels; each anchor takes its most probable type. Marker types the reference lacks can be added: anchors
     the markers call such a type keep it.
3. Every other cell is classified by a logistic regression trained on the anchors' calls in the
   aligned embedding.

Without a ``condition_key`` every cell is an anchor and nothing is aligned: plain marker or reference
annotation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, UNS_KEY
from ._embedding import harmonize, pca_embedding, responsive_genes, variable_genes
from ._markers import (
    PBMC_MARKERS,
    add_marker_only_types,
    marker_scores,
    read_markers,
    validate_markers,
)
from ._reference import reference_scores

# scikit-learn is imported inside the functions that use it: `import celltwin` (and so every
# `celltwin evaluate`) should not pay for it.

__all__ = ["annotate_cell_types"]

#: Inverse L2 penalty of the regression that carries the anchors' types to the other cells.
_TRANSFER_C = 1.0


def annotate_cell_types(
    adata: AnnData,
    *,
    markers: pd.DataFrame | str | Path | None = None,
    reference: AnnData | None = None,
    reference_key: str = "cell_type",
    condition_key: str | None = None,
    control: str = CONTROL,
    key_added: str = CONTEXT,
    n_top_genes: int = 2000,
    n_pcs: int = 30,
    n_clusters: int | None = None,
    max_response: float | None = 0.5,
    random_state: int = 0,
) -> None:
    """Annotate cell types so that a perturbation cannot move cells between types.

    Types are scored on the unperturbed cells only and carried over to perturbed cells through a
    condition-aligned embedding (see the module docstring for the method). Writes
    ``adata.obs[key_added]`` (categorical) and ``adata.uns['celltwin']['annotation']`` (what was
    done: method, genes used per type, parameters, cells per type and condition); returns ``None``.

    Parameters
    ----------
    adata
        Cells x genes, ``X`` log-normalised (``celltwin.pp.log_normalize``); var_names are gene
        symbols.
    markers
        Marker table (see :func:`read_markers`) as a DataFrame or a path; ``None`` uses celltwin's
        PBMC markers unless a ``reference`` is given. With a ``reference`` too, only the marker
        types the reference lacks are used: anchors the markers call such a type get it (name the
        shared types alike in both).
    reference
        Labelled, log-normalised cells to map from instead of markers (logistic regressions on the
        anchors' principal components). Give unperturbed cells only: labels of perturbed cells may
        carry the very leak this function avoids. Genes are matched by name and z-scored within
        each dataset, so the two need not share a normalisation; the reference may be a labelled
        subset of ``adata`` itself.
    reference_key
        Column of ``reference.obs`` with the labels.
    condition_key
        Column of ``adata.obs`` naming each cell's condition. When given, only cells whose value is
        ``control`` are scored and the conditions are aligned before types are carried over.
    control
        Value of ``condition_key`` that marks unperturbed cells.
    key_added
        ``obs`` column to write.
    n_top_genes, n_pcs
        Highly variable genes and principal components of the embedding; reference mapping
        fits in spaces of 0.5, 1 and 1.5 times ``n_top_genes`` genes and 1/2, 2/3 and all of
        ``n_pcs`` components, and chooses by cross-validation on the reference labels between
        averaging them and the full-size space alone, and the penalty (recorded in
        ``uns['celltwin']['annotation']['selected']``).
    n_clusters
        k-means clusters of the anchor cells for marker scoring; default one per ~150 anchors
        (at least 8).
    max_response
        Genes whose mean log expression differs by more than this between any condition and the
        control are left out of the embedding, so it reflects identity rather than response
        (``None`` keeps them). Only used with ``condition_key``.
    random_state
        Seed of PCA, k-means and the alignment.

    Examples
    --------
    >>> import celltwin as ct  # doctest: +SKIP
    >>> ct.pp.annotate_cell_types(adata, condition_key="perturbation")  # doctest: +SKIP
    >>> adata.obs["context"].value_counts()  # doctest: +SKIP
    """
    if reference is not None and reference_key not in reference.obs.columns:
        raise KeyError(
            f"reference_key {reference_key!r} is not a column of reference.obs "
            f"(columns: {list(reference.obs.columns)}); pass the column holding the labels"
        )
    groups, anchors = _anchor_mask(adata, condition_key, control)
    responsive = responsive_genes(adata, groups, anchors, max_response)
    genes = variable_genes(adata, groups, n_top_genes, exclude=responsive)
    pcs = pca_embedding(adata, genes, anchors, n_pcs, random_state)
    embedding = pcs
    if groups is not None and len(np.unique(groups)) > 1:
        embedding = harmonize(pcs, groups, random_state=random_state)
    scores, types, record = _call_anchors(
        adata,
        anchors,
        embedding,
        markers=markers,
        reference=reference,
        reference_key=reference_key,
        n_top_genes=n_top_genes,
        n_pcs=n_pcs,
        n_clusters=n_clusters,
        random_state=random_state,
    )
    labels = _carry_over(embedding, anchors, types[scores.argmax(axis=1)])
    adata.obs[key_added] = pd.Categorical(labels, categories=list(types))
    record.update(
        {
            "key_added": key_added,
            "n_anchor_cells": int(anchors.sum()),
            "n_top_genes": len(genes),
            "n_pcs": int(pcs.shape[1]),
            "aligned": bool(embedding is not pcs),
            "random_state": int(random_state),
            "types": [str(t) for t in types],
            "counts": _type_counts(labels, groups),
        }
    )
    if condition_key is not None:
        # h5ad cannot store None, so settings that do not apply are left out.
        record["condition_key"] = condition_key
        record["control"] = control
        record["n_responsive_genes_excluded"] = int(responsive.sum())
        if max_response is not None:
            record["max_response"] = float(max_response)
    adata.uns.setdefault(UNS_KEY, {})["annotation"] = record


# --- steps ----------------------------------------------------------------------------------------


def _call_anchors(
    adata: AnnData,
    anchors: np.ndarray,
    embedding: np.ndarray,
    *,
    markers: pd.DataFrame | str | Path | None,
    reference: AnnData | None,
    reference_key: str,
    n_top_genes: int,
    n_pcs: int,
    n_clusters: int | None,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Type scores of the anchor cells (anchors x types), the types, and how they were called."""
    record: dict[str, Any] = {}
    if reference is None or markers is not None:
        table = markers if isinstance(markers, pd.DataFrame) else read_markers(markers)
        table = validate_markers(table)
        scores, types, record = marker_scores(
            adata, table, anchors, embedding, n_clusters, random_state
        )
        record["markers"] = (
            "user table" if isinstance(markers, pd.DataFrame) else str(markers or PBMC_MARKERS)
        )
    if reference is None:
        return scores, types, record
    marker_call = None if markers is None else types[scores.argmax(axis=1)]
    scores, types, ref_record = reference_scores(
        adata, reference, reference_key, anchors, n_top_genes, n_pcs, random_state
    )
    if marker_call is not None:
        scores, types, extra = add_marker_only_types(scores, types, marker_call)
        ref_record["marker_only_types"] = extra
        ref_record["markers"] = record["markers"]
    return scores, types, ref_record


def _carry_over(embedding: np.ndarray, anchors: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """Every cell's type: anchors keep their call, the others get it from the anchors.

    Every other cell is classified by a logistic regression that learnt the anchors' calls in the
    aligned embedding: unlike averaging over nearest anchors, it does not shrink rare types among
    the perturbed cells (their share would drift).
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    labels = np.empty(len(anchors), dtype=object)
    labels[anchors] = calls
    called = np.unique(labels[anchors].astype(str))
    if not anchors.all() and len(called) > 1:
        clf = LogisticRegression(C=_TRANSFER_C, max_iter=2000)
        with threadpool_limits(1):
            clf.fit(embedding[anchors], labels[anchors].astype(str))
            labels[~anchors] = clf.predict(embedding[~anchors])
    elif not anchors.all():
        labels[~anchors] = called[0]
    return labels


def _type_counts(labels: np.ndarray, groups: np.ndarray | None) -> dict[str, dict[str, int]]:
    """Cells per type, per condition (``"all"`` without conditions)."""
    if groups is None:
        return {"all": {str(t): int(n) for t, n in pd.Series(labels).value_counts().items()}}
    table = pd.crosstab(pd.Series(labels, name="type"), pd.Series(groups, name="group"))
    return {str(g): {str(t): int(n) for t, n in table[g].items()} for g in table.columns}


def _anchor_mask(
    adata: AnnData, condition_key: str | None, control: str
) -> tuple[np.ndarray | None, np.ndarray]:
    if condition_key is None:
        return None, np.ones(adata.n_obs, dtype=bool)
    if condition_key not in adata.obs.columns:
        raise KeyError(
            f"condition_key {condition_key!r} is not a column of adata.obs "
            f"(columns: {list(adata.obs.columns)}); pass the column naming each cell's condition"
        )
    groups = adata.obs[condition_key].astype(str).to_numpy()
    anchors = groups == str(control)
    if anchors.sum() < 2:
        found = sorted(set(groups))[:10]
        raise ValueError(
            f"control {control!r} marks {int(anchors.sum())} cells of obs[{condition_key!r}] "
            f"(values include {found}); pass control= the unperturbed label"
        )
    return groups, anchors
