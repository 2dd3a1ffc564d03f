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

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, UNS_KEY

if TYPE_CHECKING:
    from sklearn.decomposition import PCA

# scikit-learn is imported inside the functions that use it: `import celltwin` (and so every
# `celltwin evaluate`) should not pay for it.

__all__ = ["PBMC_MARKERS", "annotate_cell_types", "read_markers"]

#: Name of the marker table shipped with celltwin (``celltwin/pp/markers/``).
PBMC_MARKERS = "pbmc_markers.tsv"

_MARKER_COLUMNS = ("cell_type", "gene", "weight")
# z-scores are clipped like scanpy's ``scale(max_value=10)`` so a few extreme cells cannot
# dominate a principal component.
_CLIP = 10.0
#: Reference mapping fits logistic regressions in spaces of these multiples of ``n_top_genes``
#: genes and of ``n_pcs`` components (3 x 3 spaces).
_ENSEMBLE_GENES = (0.5, 1.0, 1.5)
_ENSEMBLE_PCS = (0.5, 2 / 3, 1.0)
#: Candidate inverse L2 penalties (scikit-learn's ``C``) of those regressions.
_REFERENCE_CS = (0.03, 0.1, 0.3, 1.0)
#: Folds of the cross-validation over the reference labels that picks the candidate (a penalty,
#: and the average over all spaces or the single full-size space) before the final fit.
_SELECTION_FOLDS = 5
#: Inverse L2 penalty of the regression that carries the anchors' types to the other cells.
_TRANSFER_C = 1.0


def read_markers(path: str | Path | None = None) -> pd.DataFrame:
    """Read a marker table: one row per (cell type, gene) with a signed weight.

    Parameters
    ----------
    path
        Tab-separated file with a header ``cell_type  gene  [weight]``; lines starting with ``#``
        are comments. ``weight`` defaults to 1; negative weights mark genes of a neighbouring type.
        ``None`` reads celltwin's PBMC markers (:data:`PBMC_MARKERS`).

    Returns
    -------
    pandas.DataFrame
        Columns ``cell_type`` (str), ``gene`` (str), ``weight`` (float, never 0).
    """
    if path is None:
        with resources.files("celltwin.pp").joinpath("markers", PBMC_MARKERS).open() as fh:
            table = pd.read_csv(fh, sep="\t", comment="#")
    else:
        table = pd.read_csv(path, sep="\t", comment="#")
    return _validate_markers(table)


def _validate_markers(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _MARKER_COLUMNS[:2] if c not in table.columns]
    if missing:
        raise ValueError(
            f"marker table lacks column(s) {missing} (has {list(table.columns)}); "
            "give columns 'cell_type', 'gene' and optionally 'weight'"
        )
    table = table.copy()
    if "weight" not in table.columns:
        table["weight"] = 1.0
    table = table[list(_MARKER_COLUMNS)]
    table["cell_type"] = table["cell_type"].astype(str)
    table["gene"] = table["gene"].astype(str)
    table["weight"] = pd.to_numeric(table["weight"], errors="raise").astype(float)
    if (table["weight"] == 0).any() or table["weight"].isna().any():
        bad = table.loc[(table["weight"] == 0) | table["weight"].isna()].iloc[0]
        raise ValueError(
            f"marker 'weight' must be non-zero (got {bad['weight']} for "
            f"{bad['cell_type']}/{bad['gene']}); drop the row or give it a sign"
        )
    if not (table["weight"] > 0).groupby(table["cell_type"]).any().all():
        raise ValueError("every cell type in the marker table needs at least one positive marker")
    return table.reset_index(drop=True)


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
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    if reference is not None and reference_key not in reference.obs.columns:
        raise KeyError(
            f"reference_key {reference_key!r} is not a column of reference.obs "
            f"(columns: {list(reference.obs.columns)}); pass the column holding the labels"
        )
    groups, anchors = _anchor_mask(adata, condition_key, control)
    responsive = _responsive_genes(adata, groups, anchors, max_response)
    genes = _variable_genes(adata, groups, n_top_genes, exclude=responsive)
    pcs = _pca(adata, genes, anchors, n_pcs, random_state)
    embedding = pcs
    if groups is not None and len(np.unique(groups)) > 1:
        embedding = _harmonize(pcs, groups, random_state=random_state)

    record: dict[str, Any]
    if reference is None or markers is not None:
        table = markers if isinstance(markers, pd.DataFrame) else read_markers(markers)
        table = _validate_markers(table)
        scores, types, record = _marker_scores(
            adata, table, anchors, embedding, n_clusters, random_state
        )
        record["markers"] = (
            "user table" if isinstance(markers, pd.DataFrame) else str(markers or PBMC_MARKERS)
        )
    if reference is not None:
        marker_call = None if markers is None else types[scores.argmax(axis=1)]
        scores, types, ref_record = _reference_scores(
            adata, reference, reference_key, anchors, n_top_genes, n_pcs, random_state
        )
        if marker_call is not None:
            scores, types, extra = _add_marker_only_types(scores, types, marker_call)
            ref_record["marker_only_types"] = extra
            ref_record["markers"] = record["markers"]
        record = ref_record

    # Anchors keep their own call. Every other cell is classified by a logistic regression that
    # learnt the anchors' calls in the aligned embedding: unlike averaging over nearest anchors, it
    # does not shrink rare types among the perturbed cells (their share would drift).
    labels = np.empty(adata.n_obs, dtype=object)
    labels[anchors] = types[scores.argmax(axis=1)]
    called = np.unique(labels[anchors].astype(str))
    if not anchors.all() and len(called) > 1:
        clf = LogisticRegression(C=_TRANSFER_C, max_iter=2000)
        with threadpool_limits(1):
            clf.fit(embedding[anchors], labels[anchors].astype(str))
            labels[~anchors] = clf.predict(embedding[~anchors])
    elif not anchors.all():
        labels[~anchors] = called[0]
    adata.obs[key_added] = pd.Categorical(labels, categories=list(types))

    counts: dict[str, dict[str, int]] = {}
    if groups is not None:
        table_ = pd.crosstab(pd.Series(labels, name="type"), pd.Series(groups, name="group"))
        counts = {str(g): {str(t): int(n) for t, n in table_[g].items()} for g in table_.columns}
    else:
        counts = {"all": {str(t): int(n) for t, n in pd.Series(labels).value_counts().items()}}
    record.update(
        {
            "key_added": key_added,
            "n_anchor_cells": int(anchors.sum()),
            "n_top_genes": len(genes),
            "n_pcs": int(pcs.shape[1]),
            "aligned": bool(embedding is not pcs),
            "random_state": int(random_state),
            "types": [str(t) for t in types],
            "counts": counts,
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


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def _column_moments(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and variance of a (sparse) matrix, without densifying it."""
    mean = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
    if sp.issparse(x):
        sq = np.asarray(x.multiply(x).mean(axis=0), dtype=np.float64).ravel()
    else:
        sq = np.asarray(np.square(x, dtype=np.float64).mean(axis=0)).ravel()
    return mean, np.maximum(sq - mean**2, 0.0)


def _responsive_genes(
    adata: AnnData, groups: np.ndarray | None, anchors: np.ndarray, max_response: float | None
) -> np.ndarray:
    """Mask of genes whose mean log expression moves by more than ``max_response``."""
    mask = np.zeros(adata.n_vars, dtype=bool)
    if groups is None or max_response is None:
        return mask
    base = np.asarray(adata.X[anchors].mean(axis=0), dtype=np.float64).ravel()
    for g in pd.unique(groups[~anchors]):
        rows = np.flatnonzero(groups == g)
        mean = np.asarray(adata.X[rows].mean(axis=0), dtype=np.float64).ravel()
        mask |= np.abs(mean - base) > max_response
    return mask


def _variable_genes(
    adata: AnnData, groups: np.ndarray | None, n_top: int, *, exclude: np.ndarray
) -> np.ndarray:
    """Sorted indices of the ``n_top`` most variable genes (see :func:`_gene_ranking`)."""
    return np.sort(_gene_ranking(adata, groups, exclude=exclude)[:n_top])


def _gene_ranking(adata: AnnData, groups: np.ndarray | None, *, exclude: np.ndarray) -> np.ndarray:
    """Indices of the genes not excluded, most variable first, ranked per condition and merged.

    Dispersion (variance / mean of expm1 data, as in Seurat v2) is standardised within bins of
    mean expression; ranking per condition keeps genes that vary within a condition (cell types)
    ahead of genes that only differ between conditions.
    """
    x = adata.X
    group_list = [None] if groups is None else list(pd.unique(groups))
    ranks = []
    for g in group_list:
        rows = slice(None) if g is None else np.flatnonzero(groups == g)
        sub = x[rows]
        sub = sub.expm1() if sp.issparse(sub) else np.expm1(np.asarray(sub, dtype=np.float64))
        mean, var = _column_moments(sub)
        with np.errstate(divide="ignore", invalid="ignore"):
            disp = np.log(np.where(mean > 0, var / mean, np.nan))
            logmean = np.log1p(mean)
        z = np.full(mean.shape, -np.inf)
        ok = np.isfinite(disp) & (mean > 0)
        bins = pd.cut(logmean[ok], bins=20, labels=False)
        frame = pd.DataFrame({"disp": disp[ok], "bin": bins})
        stats = frame.groupby("bin")["disp"].agg(["mean", "std"])
        mu = stats["mean"].reindex(bins).to_numpy()
        sd = stats["std"].reindex(bins).fillna(0.0).to_numpy()
        z[ok] = np.where(sd > 0, (disp[ok] - mu) / np.where(sd > 0, sd, 1.0), 0.0)
        z[exclude] = -np.inf
        ranks.append(pd.Series(z).rank(ascending=False, method="first").to_numpy())
    # A gene's best rank in any condition, ties broken by its mean rank (Seurat's batch HVG rule).
    rank = np.vstack(ranks)
    order = np.lexsort((rank.mean(axis=0), rank.min(axis=0)))
    return order[: int((~exclude).sum())]


def _pca(
    adata: AnnData, genes: np.ndarray, anchors: np.ndarray, n_pcs: int, random_state: int
) -> np.ndarray:
    from sklearn.decomposition import PCA

    z = _dense(adata.X[:, genes])
    # Centre and scale on the anchor cells so the unperturbed state defines the axes.
    mean = z[anchors].mean(axis=0)
    sd = z[anchors].std(axis=0)
    z = np.clip((z - mean) / np.where(sd > 0, sd, 1.0), -_CLIP, _CLIP)
    n = min(n_pcs, z.shape[1] - 1, int(anchors.sum()) - 1)
    pca = PCA(n_components=n, svd_solver="randomized", random_state=random_state)
    pca.fit(z[anchors])
    return pca.transform(z)


def _harmonize(
    embedding: np.ndarray,
    groups: np.ndarray,
    *,
    n_clusters: int | None = None,
    theta: float = 2.0,
    sigma: float = 0.1,
    ridge: float = 1.0,
    n_rounds: int = 4,
    n_cluster_steps: int = 5,
    n_blocks: int = 20,
    random_state: int = 0,
) -> np.ndarray:
    """Remove the condition from a PCA embedding, Harmony-style.

    Soft k-means on the cosine-normalised embedding with a penalty that favours clusters holding
    every condition in proportion (``theta``); then, per cluster, a ridge regression of the
    embedding on the condition is subtracted (its intercept kept). Follows Korsunsky et al. 2019
    with fewer rounds, which suffices for a handful of conditions.
    """
    from sklearn.cluster import KMeans

    z = embedding.T.astype(np.float64)  # dims x cells
    n = z.shape[1]
    cats, codes = np.unique(groups, return_inverse=True)
    phi = np.zeros((len(cats), n))
    phi[codes, np.arange(n)] = 1.0
    prior = phi.sum(axis=1) / n
    k = n_clusters or int(min(100, max(2, n // 30)))

    def unit(m: np.ndarray) -> np.ndarray:
        return m / np.clip(np.linalg.norm(m, axis=0, keepdims=True), 1e-12, None)

    zc = unit(z)
    km = KMeans(n_clusters=k, n_init=1, max_iter=25, random_state=random_state).fit(zc.T)
    centroids = unit(km.cluster_centers_.T)
    r = np.exp(-2.0 * (1.0 - centroids.T @ zc) / sigma)
    r /= r.sum(axis=0, keepdims=True)
    expected = r.sum(axis=1)[:, None] * prior[None, :]
    observed = r @ phi.T
    rng = np.random.default_rng(random_state)
    design = np.vstack([np.ones(n), phi])
    penalty = ridge * np.diag(np.r_[0.0, np.ones(len(cats))])
    corrected = z
    for _ in range(n_rounds):
        for _ in range(n_cluster_steps):
            centroids = unit(zc @ r.T)
            dist = 2.0 * (1.0 - centroids.T @ zc)
            for block in np.array_split(rng.permutation(n), n_blocks):
                expected -= r[:, block].sum(axis=1)[:, None] * prior[None, :]
                observed -= r[:, block] @ phi[:, block].T
                rb = np.exp(-dist[:, block] / sigma)
                rb *= (((expected + 1.0) / (observed + 1.0)) ** theta) @ phi[:, block]
                rb /= rb.sum(axis=0, keepdims=True)
                r[:, block] = rb
                expected += rb.sum(axis=1)[:, None] * prior[None, :]
                observed += rb @ phi[:, block].T
        corrected = z.copy()
        for j in range(k):
            weighted = design * r[j][None, :]
            coef = np.linalg.solve(weighted @ design.T + penalty, weighted @ z.T)
            coef[0] = 0.0  # keep the cluster's own position, remove only the condition terms
            corrected -= coef.T @ weighted
        zc = unit(corrected)
    return corrected.T


def _marker_scores(
    adata: AnnData,
    table: pd.DataFrame,
    anchors: np.ndarray,
    embedding: np.ndarray,
    n_clusters: int | None,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    from sklearn.cluster import KMeans

    present = table[table["gene"].isin(adata.var_names)]
    types = [
        t
        for t in pd.unique(table["cell_type"])
        if (present.loc[present.cell_type == t, "weight"] > 0).any()
    ]
    if len(types) < 2:
        raise ValueError(
            f"only {len(types)} cell type(s) have a positive marker among adata.var_names "
            f"(markers: {sorted(set(table['gene']))[:10]}...); var_names must be gene symbols"
        )
    present = present[present["cell_type"].isin(types)]
    genes = list(pd.unique(present["gene"]))
    col = {g: i for i, g in enumerate(genes)}
    expr = _dense(adata[np.flatnonzero(anchors)][:, genes].X)

    n_anchor = expr.shape[0]
    k = n_clusters or max(8, round(n_anchor / 150))
    k = int(min(k, n_anchor))
    clusters = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit_predict(
        embedding[anchors]
    )
    means = pd.DataFrame(expr).groupby(clusters).mean().to_numpy()  # clusters x genes
    top = means.max(axis=0)
    # Each marker counts on the same 0..1 scale: its cluster mean over its highest cluster mean.
    scaled = np.divide(means, top, out=np.zeros_like(means), where=top > 0)

    cluster_scores = np.zeros((k, len(types)))
    used: dict[str, list[str]] = {}
    for j, t in enumerate(types):
        rows = present[present["cell_type"] == t]
        w = rows["weight"].to_numpy()
        idx = np.array([col[g] for g in rows["gene"]])
        pos, neg = w > 0, w < 0
        cluster_scores[:, j] = scaled[:, idx[pos]] @ w[pos] / w[pos].sum()
        if neg.any():
            cluster_scores[:, j] -= scaled[:, idx[neg]] @ (-w[neg]) / (-w[neg]).sum()
        used[str(t)] = [str(g) for g in rows["gene"]]
    record = {
        "method": "markers",
        "n_clusters": k,
        "marker_genes": used,
        "missing_genes": sorted(set(table["gene"]) - set(genes)),
    }
    return cluster_scores[clusters], np.asarray(types, dtype=object), record


def _reference_scores(
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
    the reference labels (:func:`_map_reference`).
    """
    in_reference = adata.var_names.isin(reference.var_names)
    if in_reference.sum() < 50:
        raise ValueError(
            f"only {int(in_reference.sum())} of adata's genes are in reference.var_names; "
            "both need gene symbols as var_names"
        )
    spaces = _anchor_spaces(adata, anchors, in_reference, n_top_genes, n_pcs, random_state)
    labels = reference.obs[reference_key].astype(str).to_numpy()
    proba, types, selection = _map_reference(spaces, reference, labels, random_state)
    record = {
        "method": "reference",
        "reference_key": reference_key,
        "n_reference_cells": int(reference.n_obs),
        "reference_types": [str(t) for t in types],
        "n_shared_genes": int(in_reference.sum()),
        **selection,
    }
    return proba, types, record


def _anchor_spaces(
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
    ranked = _gene_ranking(anchor_data, None, exclude=~allowed)[: max(sizes)]
    # One z-scored matrix of the most genes; smaller sets are column subsets of it.
    order = np.sort(ranked)
    query_all = _zscore(_dense(anchor_data.X[:, order]))
    spaces = []
    for n_genes in sizes:
        cols = np.flatnonzero(np.isin(order, ranked[:n_genes]))
        query = query_all[:, cols]
        n_max = min(n_pcs, query.shape[1] - 1, query.shape[0] - 1)
        pca = PCA(n_components=n_max, svd_solver="randomized", random_state=random_state)
        spaces.append((adata.var_names[order[cols]], pca, pca.fit_transform(query)))
    return spaces


def _map_reference(
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
        ref = pca.transform(_zscore(_dense(reference[:, names].X)))
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


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return np.clip((x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), -_CLIP, _CLIP)


def _add_marker_only_types(
    scores: np.ndarray, types: np.ndarray, marker_call: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Give anchors that the markers call a type the reference lacks that type, outright."""
    known = set(types.tolist())
    extra = [str(t) for t in pd.unique(marker_call) if t not in known]
    if not extra:
        return scores, types, []
    out = np.hstack([scores, np.zeros((scores.shape[0], len(extra)))])
    for j, t in enumerate(extra, start=len(types)):
        rows = marker_call == t
        out[rows] = 0.0
        out[rows, j] = 1.0
    return out, np.concatenate([types, np.asarray(extra, dtype=object)]), extra
