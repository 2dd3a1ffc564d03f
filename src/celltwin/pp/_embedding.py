"""The embedding cell types are called in: variable genes, PCA, and a Harmony-style alignment.

Genes that respond to the perturbation are left out and the variable genes are chosen per
condition, so the embedding reflects identity; :func:`harmonize` then removes the condition from
the principal components while keeping the cell types apart (Korsunsky et al. 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

# scikit-learn is imported inside the functions that use it: `import celltwin` (and so every
# `celltwin evaluate`) should not pay for it.

# z-scores are clipped like scanpy's ``scale(max_value=10)`` so a few extreme cells cannot
# dominate a principal component.
_CLIP = 10.0


def dense(x: Any) -> np.ndarray:
    """A float64 dense copy of a (sparse) matrix."""
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def column_moments(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and variance of a (sparse) matrix, without densifying it."""
    mean = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
    if sp.issparse(x):
        sq = np.asarray(x.multiply(x).mean(axis=0), dtype=np.float64).ravel()
    else:
        sq = np.asarray(np.square(x, dtype=np.float64).mean(axis=0)).ravel()
    return mean, np.maximum(sq - mean**2, 0.0)


def responsive_genes(
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


def variable_genes(
    adata: AnnData, groups: np.ndarray | None, n_top: int, *, exclude: np.ndarray
) -> np.ndarray:
    """Sorted indices of the ``n_top`` most variable genes (see :func:`gene_ranking`)."""
    return np.sort(gene_ranking(adata, groups, exclude=exclude)[:n_top])


def gene_ranking(adata: AnnData, groups: np.ndarray | None, *, exclude: np.ndarray) -> np.ndarray:
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
        mean, var = column_moments(sub)
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


def pca_embedding(
    adata: AnnData, genes: np.ndarray, anchors: np.ndarray, n_pcs: int, random_state: int
) -> np.ndarray:
    from sklearn.decomposition import PCA

    z = dense(adata.X[:, genes])
    # Centre and scale on the anchor cells so the unperturbed state defines the axes.
    mean = z[anchors].mean(axis=0)
    sd = z[anchors].std(axis=0)
    z = np.clip((z - mean) / np.where(sd > 0, sd, 1.0), -_CLIP, _CLIP)
    n = min(n_pcs, z.shape[1] - 1, int(anchors.sum()) - 1)
    pca = PCA(n_components=n, svd_solver="randomized", random_state=random_state)
    pca.fit(z[anchors])
    return pca.transform(z)


def harmonize(
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


def zscore(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit variance, clipped at +-10."""
    sd = x.std(axis=0)
    return np.clip((x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), -_CLIP, _CLIP)
