"""Cell types mapped from a labelled reference: logistic regressions in an ensemble of spaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._embedding import dense, gene_ranking, zscore

if TYPE_CHECKING:
    from sklearn.decomposition import PCA

#: Reference mapping fits logistic regressions in spaces of these multiples of ``n_top_genes``
#: genes and of ``n_pcs`` components (3 x 3 spaces).
_ENSEMBLE_GENES = (0.5, 1.0, 1.5)
_ENSEMBLE_PCS = (0.5, 2 / 3, 1.0)
#: Candidate inverse L2 penalties (scikit-learn's ``C``) of those regressions.
_REFERENCE_CS = (0.03, 0.1, 0.3, 1.0)
#: Folds of the cross-validation over the reference labels that picks the candidate (a penalty,
#: and the average over all spaces or the single full-size space) before the final fit.
_SELECTION_FOLDS = 5


def reference_scores(
    adata: AnnData,
    reference: AnnData,
    reference_key: str,
    anchors: np.ndarray,
    n_top_genes: int,
    n_pcs: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Type probabilities of the anchor cells from logistic regressions on a labelled reference.

    The embedding is the anchors' own (variable genes and PCA of the unperturbed cells, with every
    gene: nothing responds among them), in several spaces: :data:`_ENSEMBLE_GENES` x
    ``n_top_genes`` variable genes and :data:`_ENSEMBLE_PCS` x ``n_pcs`` components. The penalty,
    and whether to average all spaces or use the full-size one, are chosen by cross-validation on
    the reference labels (:func:`map_reference`).
    """
    in_reference = adata.var_names.isin(reference.var_names)
    if in_reference.sum() < 50:
        raise ValueError(
            f"only {int(in_reference.sum())} of adata's genes are in reference.var_names; "
            "both need gene symbols as var_names"
        )
    spaces = anchor_spaces(adata, anchors, in_reference, n_top_genes, n_pcs, random_state)
    labels = reference.obs[reference_key].astype(str).to_numpy()
    proba, types, selection = map_reference(spaces, reference, labels, random_state)
    record = {
        "method": "reference",
        "reference_key": reference_key,
        "n_reference_cells": int(reference.n_obs),
        "reference_types": [str(t) for t in types],
        "n_shared_genes": int(in_reference.sum()),
        **selection,
    }
    return proba, types, record


def anchor_spaces(
    adata: AnnData,
    anchors: np.ndarray,
    allowed: np.ndarray,
    n_top_genes: int,
    n_pcs: int,
    random_state: int,
) -> list[tuple[pd.Index, PCA, np.ndarray]]:
    """Per ensemble gene number: the genes, a PCA fitted on the z-scored anchors, their PCs."""
    from sklearn.decomposition import PCA

    anchor_data = adata[np.flatnonzero(anchors)]
    sizes = [max(2, round(scale * n_top_genes)) for scale in _ENSEMBLE_GENES]
    ranked = gene_ranking(anchor_data, None, exclude=~allowed)[: max(sizes)]
    # One z-scored matrix of the most genes; smaller sets are column subsets of it.
    order = np.sort(ranked)
    query_all = zscore(dense(anchor_data.X[:, order]))
    spaces = []
    for n_genes in sizes:
        cols = np.flatnonzero(np.isin(order, ranked[:n_genes]))
        query = query_all[:, cols]
        n_max = min(n_pcs, query.shape[1] - 1, query.shape[0] - 1)
        pca = PCA(n_components=n_max, svd_solver="randomized", random_state=random_state)
        spaces.append((adata.var_names[order[cols]], pca, pca.fit_transform(query)))
    return spaces


def map_reference(
    spaces: list[tuple[pd.Index, PCA, np.ndarray]],
    reference: AnnData,
    labels: np.ndarray,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Type probabilities of the anchors, from the candidate chosen by CV on the reference.

    Candidates: each penalty in :data:`_REFERENCE_CS`, either averaging the log-probabilities of
    the regressions in all spaces (an ensemble) or using the full-size space alone. The choice is
    made by stratified K-fold cross-validation over the reference labels only, so when the
    reference is itself scored by an outer cross-validation (``benchmarks/kang_annotation.py``)
    the selection is nested inside it and the outer score stays honest.
    """
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    types = np.unique(labels)
    # (reference features, anchor features, [genes, components]) per space and component number;
    # the reference is z-scored on its own, so the two need not share a normalisation.
    views: list[tuple[np.ndarray, np.ndarray, list[int]]] = []
    for names, pca, query in spaces:
        ref = pca.transform(zscore(dense(reference[:, names].X)))
        for pc_scale in _ENSEMBLE_PCS:
            n = max(2, round(pc_scale * query.shape[1]))
            views.append((ref[:, :n], query[:, :n], [len(names), n]))
    full = max(range(len(views)), key=lambda i: tuple(views[i][2]))
    options = {"ensemble": list(range(len(views))), "single": [full]}
    candidates = [(c, fits) for c in _REFERENCE_CS for fits in options]
    scores = dict.fromkeys(candidates, float("nan"))
    folds = min(_SELECTION_FOLDS, int(pd.Series(labels).value_counts().min()))
    best = (0.1, "ensemble")  # too few labels per type to cross-validate: a middle choice
    # Hundreds of small fits: one BLAS thread each is ~10x faster than several fighting for
    # the cores (measured on a busy 2-core machine).
    with threadpool_limits(1):
        if len(types) > 1 and folds >= 2:
            correct = dict.fromkeys(candidates, 0)
            split = StratifiedKFold(folds, shuffle=True, random_state=random_state)
            for train, test in split.split(np.zeros(len(labels)), labels):
                for c, fits in candidates:
                    chosen = [views[i] for i in options[fits]]
                    targets = [v[0][test] for v in chosen]
                    lp = _mean_log_proba(chosen, targets, labels, types, c=c, rows=train)
                    correct[(c, fits)] += int((types[lp.argmax(axis=1)] == labels[test]).sum())
            scores = {cand: correct[cand] / len(labels) for cand in candidates}
            # max keeps the first of equals: the smallest penalty, the ensemble first.
            best = max(candidates, key=lambda cand: scores[cand])
        chosen = [views[i] for i in options[best[1]]]
        everyone = np.arange(len(labels))
        mean = _mean_log_proba(
            chosen, [v[1] for v in chosen], labels, types, c=best[0], rows=everyone
        )
    proba = np.exp(mean - mean.max(axis=1, keepdims=True))
    record = {
        "selected": {"C": best[0], "fits": best[1], "cv_accuracy": scores[best]},
        # Columns, not a list of records: h5ad stores dicts of arrays, not lists of dicts.
        "candidates": {
            "C": [c for c, _ in candidates],
            "fits": [f for _, f in candidates],
            "cv_accuracy": [scores[cand] for cand in candidates],
        },
        "spaces": [v[2] for v in chosen],
    }
    return proba / proba.sum(axis=1, keepdims=True), types.astype(object), record


def _mean_log_proba(
    views: list[tuple[np.ndarray, np.ndarray, list[int]]],
    targets: list[np.ndarray],
    labels: np.ndarray,
    types: np.ndarray,
    *,
    c: float,
    rows: np.ndarray,
) -> np.ndarray:
    """Mean over ``views`` of the log-probabilities of ``targets`` by a regression on ``rows``."""
    from sklearn.linear_model import LogisticRegression

    total = np.zeros((targets[0].shape[0], len(types)))
    for (ref, _, _), x in zip(views, targets, strict=True):
        clf = LogisticRegression(C=c, max_iter=2000).fit(ref[rows], labels[rows])
        # Types absent from a training fold get (almost) zero probability.
        lp = np.full((x.shape[0], len(types)), np.log(1e-12))
        lp[:, np.searchsorted(types, clf.classes_)] = np.log(clf.predict_proba(x) + 1e-12)
        total += lp
    return total / len(views)
