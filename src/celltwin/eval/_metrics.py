"""Metric functions: pure functions over arrays, one value per perturbation.

Conventions: the prediction then the truth are the two positional arguments, anything else is
keyword-only and named like the :class:`~celltwin.eval._registry.MetricInputs` field it takes (so
the registry can pass inputs by name). Rows are perturbations (``P``), columns genes (``G``);
"means" are pseudobulk profiles
(mean log1p expression of a perturbation's cells); "delta" is a mean minus a control mean. Every
per-perturbation metric returns a float64 array of shape ``(P,)``; NaN marks a value that is
undefined (e.g. a correlation with a constant vector).

Definitions follow the tools they come from:

- cell-eval 0.8.x (Virtual Cell Challenge): :func:`mae`, :func:`pds` (``discrimination_score_l1``),
  :func:`des` (``overlap_at_N``), :func:`pearson_delta`, and :func:`vcc_score`.
- GEARS: :func:`pearson_delta_top_de`, :func:`mse_top_de` (top DE genes by Welch t, control from the
  true data on both sides).
- Systema: :func:`systema_pearson_delta`, :func:`centroid_accuracy`.
- scGen: :func:`r2_mean`, :func:`r2_mean_top_de` (R² of mean expression).
- Combinations: :func:`interaction_pearson` (recovery of a combination's interaction).
- Distributional: :func:`energy_distance`, :func:`mmd` on cells in a shared PCA space
  (:func:`fit_pca`).
- Rank metrics for signatures: :func:`spearman`, :func:`topk_overlap`, :func:`topk_auroc`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import cdist

from ._de import DEResult

__all__ = [
    "PCABasis",
    "baseline_scaled",
    "centroid_accuracy",
    "des",
    "energy_distance",
    "fit_pca",
    "interaction_pearson",
    "mae",
    "mean_of_centroids",
    "mmd",
    "mse",
    "mse_top_de",
    "n_sig_spearman",
    "pds",
    "pearson_delta",
    "pearson_delta_top_de",
    "r2_mean",
    "r2_mean_top_de",
    "spearman",
    "systema_pearson_delta",
    "topk_auroc",
    "topk_overlap",
    "vcc_score",
]

#: FDR below which cell-eval calls a gene differentially expressed.
FDR_THRESHOLD = 0.05

Direction = Literal["up", "down"]


def _pair(pred: ArrayLike, true: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(
            f"pred and true must be 2-D arrays of the same shape (perturbations x genes); "
            f"got {p.shape} and {t.shape}"
        )
    return p, t


def _rankdata(a: ArrayLike, axis: int | None = None) -> NDArray[np.float64]:
    """``scipy.stats.rankdata`` (average ranks), imported on first use: scipy.stats is slow to
    import and most evaluations never rank."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(a, axis=axis), dtype=np.float64)


def _rowwise_pearson(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pearson r of each row pair; NaN where either row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    out = np.full(a.shape[0], np.nan)
    ok = den > 0
    out[ok] = np.clip(num[ok] / den[ok], -1.0, 1.0)
    return out


# --- pseudobulk metrics -------------------------------------------------------------------------


def mae(pred_means: ArrayLike, true_means: ArrayLike) -> NDArray[np.float64]:
    """Mean absolute error between predicted and true pseudobulk profiles, per perturbation.

    cell-eval's ``mae``: on the profiles themselves (not on deltas), averaged over all genes.
    Lower is better, 0 is perfect.
    """
    p, t = _pair(pred_means, true_means)
    return np.abs(p - t).mean(axis=1)


def mse(pred_means: ArrayLike, true_means: ArrayLike) -> NDArray[np.float64]:
    """Mean squared error between predicted and true pseudobulk profiles, per perturbation."""
    p, t = _pair(pred_means, true_means)
    return ((p - t) ** 2).mean(axis=1)


def pearson_delta(pred_delta: ArrayLike, true_delta: ArrayLike) -> NDArray[np.float64]:
    """Pearson correlation of predicted and true changes from control, over all genes.

    cell-eval computes each delta against its own file's control (predicted control for the
    prediction); GEARS uses the true control on both sides. The caller chooses by the deltas it
    passes. Higher is better, 1 is perfect.
    """
    p, t = _pair(pred_delta, true_delta)
    return _rowwise_pearson(p, t)


def pds(
    pred_delta: ArrayLike, true_delta: ArrayLike, *, target_mask: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Perturbation discrimination score (cell-eval ``discrimination_score_l1``).

    For perturbation ``p``, the L1 distance from its predicted delta to every true delta is
    computed; ``rank`` is the number of true deltas closer than its own (ties broken by row order,
    as cell-eval's ``argsort`` does on small inputs) and the score is ``1 - rank / P``: 1 when its
    own truth is the nearest, ``1/P`` when it is the farthest.

    Parameters
    ----------
    pred_delta, true_delta
        ``(P, G)`` predicted and true mean minus control (cell-eval: each against its own control).
    target_mask
        ``(P, G)`` boolean, genes left out of row ``p``'s distances: the perturbation's own target
        gene(s), whose knock-down would otherwise make discrimination trivial (cell-eval >= 0.5
        drops the column whose gene name equals the perturbation name).
    """
    p, t = _pair(pred_delta, true_delta)
    n_perts = p.shape[0]
    dist = cdist(p, t, metric="cityblock")
    if target_mask is not None:
        mask = np.asarray(target_mask, dtype=bool)
        if mask.shape != p.shape:
            raise ValueError(f"target_mask must have shape {p.shape}, got {mask.shape}")
        for i in np.flatnonzero(mask.any(axis=1)):
            cols = np.flatnonzero(mask[i])
            dist[i] -= np.abs(t[:, cols] - p[i, cols]).sum(axis=1)
    own = np.diag(dist)[:, None]
    earlier = np.tri(n_perts, k=-1, dtype=bool)  # [i, j] is True for j < i
    rank = (dist < own).sum(axis=1) + ((dist == own) & earlier).sum(axis=1)
    return 1.0 - rank / n_perts


def des(
    pred_lfc: ArrayLike,
    true_lfc: ArrayLike,
    *,
    pred_fdr: ArrayLike,
    true_fdr: ArrayLike,
    fdr_threshold: float = FDR_THRESHOLD,
) -> NDArray[np.float64]:
    """Differential expression score (cell-eval ``overlap_at_N``), per perturbation.

    ``N`` is the number of genes truly significant (``FDR < fdr_threshold``). The prediction's
    significant genes are ranked by ``|log2 fold change|`` (largest first, ties in gene order) and
    its top ``N`` are intersected with the truly significant set; the score is the overlap over
    ``N``. Fewer than ``N`` predicted significant genes simply caps the overlap. A perturbation
    without truly significant genes scores 0, as in cell-eval. Higher is better, 1 is perfect.

    As cell-eval stores DE tables in Float32, FDR and ``|lfc|`` are compared in float32 (an FDR of
    0.0499999999 is not significant there), which keeps exact parity at the threshold.
    """
    t_lfc, t_fdr = _pair(true_lfc, true_fdr)
    p_lfc, p_fdr = _pair(pred_lfc, pred_fdr)
    if t_lfc.shape != p_lfc.shape:
        raise ValueError(f"true and pred DE tables differ in shape: {t_lfc.shape} vs {p_lfc.shape}")
    thr = np.float32(fdr_threshold)
    true_sig = t_fdr.astype(np.float32) < thr
    pred_sig = p_fdr.astype(np.float32) < thr
    pred_abs = np.abs(p_lfc).astype(np.float32)
    out = np.zeros(t_lfc.shape[0])
    for i in range(t_lfc.shape[0]):
        n_true = int(true_sig[i].sum())
        if n_true == 0:
            continue
        candidates = np.flatnonzero(pred_sig[i])
        top = candidates[np.argsort(-pred_abs[i, candidates], kind="stable")[:n_true]]
        out[i] = np.count_nonzero(true_sig[i, top]) / n_true
    return out


def n_sig_spearman(
    pred_fdr: ArrayLike, true_fdr: ArrayLike, *, fdr_threshold: float = FDR_THRESHOLD
) -> NDArray[np.float64]:
    """Spearman correlation, across perturbations, of the number of significant DE genes.

    An aggregate metric (0-d array), like cell-eval's ``de_spearman_sig``: does the model know
    which perturbations have strong effects? NaN when either count vector is constant.
    """
    p, t = _pair(pred_fdr, true_fdr)
    thr = np.float32(fdr_threshold)
    n_true = (t.astype(np.float32) < thr).sum(axis=1)
    n_pred = (p.astype(np.float32) < thr).sum(axis=1)
    r = _rowwise_pearson(_rankdata(n_true)[None, :], _rankdata(n_pred)[None, :])
    return np.asarray(r[0])


def _top_rows(values: NDArray[np.float64], idx: NDArray[np.int64]) -> NDArray[np.float64]:
    return np.take_along_axis(values, idx, axis=1)


def pearson_delta_top_de(
    pred_means: ArrayLike, true_means: ArrayLike, *, true_control: ArrayLike, top_de: ArrayLike
) -> NDArray[np.float64]:
    """GEARS ``pearson_de_delta``: Pearson of changes from control on each row's top DE genes.

    Both deltas use the same (true) control mean, as GEARS does. ``top_de`` is ``(P, k)`` gene
    indices (GEARS: 20 genes by ``|t|`` of scanpy's Welch t-test; see
    :func:`celltwin.eval._de.top_de_genes`).
    """
    p, t = _pair(pred_means, true_means)
    idx = np.asarray(top_de, dtype=np.int64)
    ctrl = np.asarray(true_control, dtype=np.float64)[idx]
    return _rowwise_pearson(_top_rows(p, idx) - ctrl, _top_rows(t, idx) - ctrl)


def mse_top_de(
    pred_means: ArrayLike, true_means: ArrayLike, *, top_de: ArrayLike
) -> NDArray[np.float64]:
    """GEARS ``mse_de``: mean squared error of the profiles on each row's top DE genes."""
    p, t = _pair(pred_means, true_means)
    idx = np.asarray(top_de, dtype=np.int64)
    return ((_top_rows(p, idx) - _top_rows(t, idx)) ** 2).mean(axis=1)


def systema_pearson_delta(
    pred_means: ArrayLike, true_means: ArrayLike, *, reference: ArrayLike
) -> NDArray[np.float64]:
    """Systema's Pearson delta: changes measured from the perturbed reference, not the control.

    ``reference`` is the mean of the training perturbations' centroids (Systema's
    ``average_of_perturbation_centroids``, see :func:`mean_of_centroids`), so a prediction only
    scores by capturing what is specific to a perturbation, not the shift all perturbations share.
    """
    p, t = _pair(pred_means, true_means)
    ref = np.asarray(reference, dtype=np.float64)[None, :]
    return _rowwise_pearson(p - ref, t - ref)


def centroid_accuracy(pred_means: ArrayLike, true_means: ArrayLike) -> NDArray[np.float64]:
    """Systema centroid accuracy: share of other true centroids farther than the own one.

    For perturbation ``p`` with Euclidean distances ``d(pred_p, true_q)``: the fraction of the
    other ``P - 1`` perturbations ``q`` with ``d(pred_p, true_q) > d(pred_p, true_p)`` (ties count
    as not farther), as Systema's ``calculate_centroid_accuracies``. 1 is perfect, about 0.5 is
    chance; NaN with a single perturbation.
    """
    p, t = _pair(pred_means, true_means)
    n_perts = p.shape[0]
    if n_perts < 2:
        return np.full(n_perts, np.nan)
    dist = cdist(p, t, metric="euclidean")
    own = np.diag(dist)[:, None]
    return (dist > own).sum(axis=1) / (n_perts - 1)


# --- scGen's R² of mean expression --------------------------------------------------------------


def _rowwise_r2(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared Pearson r of each row pair; NaN where either row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b)
    out = np.full(a.shape[0], np.nan)
    ok = den > 0
    out[ok] = num[ok] ** 2 / den[ok]
    return out


def r2_mean(pred_means: ArrayLike, true_means: ArrayLike) -> NDArray[np.float64]:
    """scGen's R²: squared Pearson r of predicted and true mean expression over all genes.

    scGen (Lotfollahi et al. 2019) reports ``scipy.stats.linregress(x, y).rvalue ** 2`` of the
    mean profiles, which is this. Higher is better, 1 is perfect.
    """
    p = np.asarray(pred_means, dtype=np.float64)
    t = np.asarray(true_means, dtype=np.float64)
    return _rowwise_r2(p, t)


def r2_mean_top_de(
    pred_means: ArrayLike, true_means: ArrayLike, *, true_de: DEResult, k: int = 100
) -> NDArray[np.float64]:
    """scGen's R² of mean expression on each perturbation's top-``k`` DE genes.

    scGen takes the top ``k`` genes of ``scanpy.tl.rank_genes_groups(method="wilcoxon")`` for
    the stimulated group: the most *up*-regulated by Wilcoxon score. Here: the ``k`` genes of
    largest signed score ``sign(lfc) * -log10(p)`` of :func:`celltwin.eval.rank_sum_test` (the same
    order as the Wilcoxon z for one group against the control); ``true_de`` rows in the order
    of the profiles' rows.
    """
    p = np.asarray(pred_means, dtype=np.float64)
    t = np.asarray(true_means, dtype=np.float64)
    with np.errstate(divide="ignore"):
        score = np.sign(true_de.log2_fold_change) * -np.log10(np.maximum(true_de.pvalue, 1e-300))
    score = np.nan_to_num(score, nan=-np.inf)
    top = np.argsort(-score, axis=1, kind="stable")[:, : min(k, p.shape[1])]
    return _rowwise_r2(np.take_along_axis(p, top, axis=1), np.take_along_axis(t, top, axis=1))


# --- interactions of combinations ---------------------------------------------------------------


def _partial_pearson(
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> float:
    """Pearson r of ``x`` and ``y`` after removing from both their least-squares fit on ``[1, z]``.

    0 when nothing of ``x`` is left (a prediction with no interaction beyond the additive one
    recovers none). Not clipped to [-1, 1] (unlike :func:`_rowwise_pearson`).
    """
    design = np.column_stack([np.ones_like(z), z])

    def residual(v: NDArray[np.float64]) -> NDArray[np.float64]:
        fitted: NDArray[np.float64] = design @ np.linalg.lstsq(design, v, rcond=None)[0]
        return v - fitted

    rx, ry = residual(x), residual(y)
    # Below this, what is left is float32 rounding of the predicted cells, not an interaction.
    scale = max(float(np.linalg.norm(x)), float(np.linalg.norm(z)), 1e-12)
    if float(np.linalg.norm(rx)) <= 1e-5 * scale or not np.any(ry):
        return 0.0
    a, b = rx[None, :], ry[None, :]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.where(den > 0, np.einsum("ij,ij->i", a, b) / den, np.nan)[0])


def interaction_pearson(
    pred_interaction: ArrayLike, true_interaction: ArrayLike, *, additive: ArrayLike
) -> NDArray[np.float64]:
    """Recovery of each combination's interaction: partial Pearson r given the additive sum.

    For combination ``p`` (a row): ``pred_interaction`` is the predicted effect minus
    ``additive``, the sum of its parts' effects as the model has them; ``true_interaction`` is
    the true effect minus the true singles' effects (e.g.
    :attr:`celltwin.simulate.Simulation.interactions`). Both are freed of their least-squares
    fit on ``[1, additive]`` over the genes before correlating, so a prediction that merely
    shrinks (or scales) the sum of its parts scores 0, not the correlation that the simulator's
    mostly sub-additive interactions would give it. 0 when no interaction beyond ``additive``
    is predicted; NaN when a residual is constant. Higher is better, 1 is perfect.

    Parameters
    ----------
    pred_interaction, true_interaction, additive
        ``(P, G)`` (or ``(G,)`` for one combination) over the same genes.

    Returns
    -------
    ``(P,)`` float64.
    """
    x = np.atleast_2d(np.asarray(pred_interaction, dtype=np.float64))
    y = np.atleast_2d(np.asarray(true_interaction, dtype=np.float64))
    z = np.atleast_2d(np.asarray(additive, dtype=np.float64))
    if not x.shape == y.shape == z.shape:
        raise ValueError(
            "pred_interaction, true_interaction and additive must have the same shape "
            f"(combinations x genes); got {x.shape}, {y.shape} and {z.shape}"
        )
    return np.array([_partial_pearson(x[i], y[i], z[i]) for i in range(x.shape[0])])


# --- distributional metrics ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PCABasis:
    """A PCA projection: ``(X - mean) @ components.T``."""

    mean: NDArray[np.float64]
    components: NDArray[np.float64]

    def transform(self, X: ArrayLike | sp.spmatrix) -> NDArray[np.float64]:
        """Project cells (rows of ``X``) onto the components."""
        x = X.toarray() if sp.issparse(X) else np.asarray(X)
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T


def fit_pca(X: ArrayLike | sp.spmatrix, *, n_components: int = 50, seed: int = 0) -> PCABasis:
    """Fit a PCA basis, e.g. on the true perturbed cells plus the control cells.

    Fitting on true data only keeps the space independent of the model being scored, so two models
    are compared in the same space. ``n_components`` is capped by the data's rank limit.
    """
    from sklearn.decomposition import PCA

    x = X.toarray() if sp.issparse(X) else np.asarray(X)
    x = np.asarray(x, dtype=np.float64)
    k = int(min(n_components, x.shape[0] - 1, x.shape[1]))
    if k < 1:
        raise ValueError(f"PCA needs at least 2 cells and 1 gene, got shape {x.shape}")
    pca = PCA(n_components=k, random_state=seed).fit(x)
    return PCABasis(
        mean=pca.mean_.astype(np.float64), components=pca.components_.astype(np.float64)
    )


def _cells(pred_cells: Sequence[ArrayLike], true_cells: Sequence[ArrayLike]) -> list[tuple]:
    if len(pred_cells) != len(true_cells):
        raise ValueError(
            f"pred_cells and true_cells must list the same perturbations: "
            f"{len(pred_cells)} vs {len(true_cells)}"
        )
    return [
        (np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        for a, b in zip(pred_cells, true_cells, strict=True)
    ]


def energy_distance(
    pred_cells: Sequence[ArrayLike], true_cells: Sequence[ArrayLike]
) -> NDArray[np.float64]:
    """Energy distance between predicted and true cells of each perturbation.

    ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` with Euclidean distances, each expectation the mean over
    all pairs including a cell with itself (V-statistic, as cell-eval's and pertpy's
    ``edistance``), so it is >= 0 and exactly 0 for identical sets. Lower is better.
    """
    out = []
    for x, y in _cells(pred_cells, true_cells):
        if len(x) == 0 or len(y) == 0:
            out.append(np.nan)
            continue
        out.append(2.0 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())
    return np.asarray(out, dtype=np.float64)


#: Bandwidths of the RBF kernels in :func:`mmd`, as multiples of the median heuristic.
MMD_SCALES: tuple[float, ...] = (0.5, 1.0, 2.0)


def mmd(
    pred_cells: Sequence[ArrayLike],
    true_cells: Sequence[ArrayLike],
    *,
    scales: Sequence[float] = MMD_SCALES,
) -> NDArray[np.float64]:
    """Maximum mean discrepancy (squared, biased estimator) between predicted and true cells.

    Kernel: the average of RBF kernels ``exp(-|a - b|^2 / (2 s^2))`` over ``s = c * sigma`` for
    ``c`` in ``scales``, where ``sigma`` is the median pairwise distance among the *true* cells of
    that perturbation (the median heuristic, taken on the truth so every model is scored with the
    same kernel; 1 if that median is 0). ``MMD^2 = mean K(X, X) + mean K(Y, Y) - 2 mean K(X, Y)``,
    >= 0 and 0 for identical sets. Lower is better.
    """
    out = []
    for x, y in _cells(pred_cells, true_cells):
        if len(x) == 0 or len(y) == 0:
            out.append(np.nan)
            continue
        dyy = cdist(y, y, metric="sqeuclidean")
        off = dyy[~np.eye(len(y), dtype=bool)]
        sigma = float(np.sqrt(np.median(off))) if off.size else 0.0
        sigma = sigma if sigma > 0 else 1.0
        dxx = cdist(x, x, metric="sqeuclidean")
        dxy = cdist(x, y, metric="sqeuclidean")
        total = 0.0
        for c in scales:
            gamma = 1.0 / (2.0 * (c * sigma) ** 2)
            total += (
                np.exp(-gamma * dxx).mean()
                + np.exp(-gamma * dyy).mean()
                - 2.0 * np.exp(-gamma * dxy).mean()
            )
        out.append(max(total / len(scales), 0.0))
    return np.asarray(out, dtype=np.float64)


# --- rank metrics -------------------------------------------------------------------------------


def _valid_row(pred: NDArray[np.float64], true: NDArray[np.float64], i: int):
    ok = np.isfinite(true[i]) & np.isfinite(pred[i])
    return pred[i, ok], true[i, ok]


def spearman(pred_scores: ArrayLike, true_scores: ArrayLike) -> NDArray[np.float64]:
    """Spearman correlation of predicted and true gene scores, per perturbation.

    Scores are anything ranked (deltas, log fold changes, signature ranks negated). Genes with a
    non-finite true or predicted score (e.g. not in a signature) are left out; average ranks for
    ties, as ``scipy.stats.spearmanr``. Higher is better.
    """
    p, t = _pair(pred_scores, true_scores)
    if np.isfinite(p).all() and np.isfinite(t).all():
        return _rowwise_pearson(_rankdata(p, axis=1), _rankdata(t, axis=1))
    out = np.full(p.shape[0], np.nan)
    for i in range(p.shape[0]):
        a, b = _valid_row(p, t, i)
        if a.size > 1:
            out[i] = _rowwise_pearson(_rankdata(a)[None, :], _rankdata(b)[None, :])[0]
    return out


def _top_set(scores: NDArray[np.float64], k: int, direction: Direction) -> NDArray[np.intp]:
    """Indices of the ``k`` highest (``up``) or lowest (``down``) finite scores, ties in order."""
    valid = np.flatnonzero(np.isfinite(scores))
    key = -scores[valid] if direction == "up" else scores[valid]
    return valid[np.argsort(key, kind="stable")[:k]]


def _check_direction(direction: str) -> None:
    if direction not in ("up", "down"):
        raise ValueError(f"'direction' must be 'up' or 'down' (got {direction!r})")


def topk_overlap(
    pred_scores: ArrayLike, true_scores: ArrayLike, *, k: int, direction: Direction = "up"
) -> NDArray[np.float64]:
    """Share of the true top-``k`` genes that are also in the predicted top-``k``.

    ``direction="up"`` takes the highest scores, ``"down"`` the lowest. Genes with a non-finite
    true score are not candidates on either side. Higher is better, 1 is perfect.
    """
    _check_direction(direction)
    p, t = _pair(pred_scores, true_scores)
    out = np.full(p.shape[0], np.nan)
    for i in range(p.shape[0]):
        finite = np.isfinite(t[i])
        true_top = _top_set(t[i], k, direction)
        pred_top = _top_set(np.where(finite, p[i], np.nan), k, direction)
        if true_top.size:
            out[i] = np.intersect1d(true_top, pred_top).size / true_top.size
    return out


def topk_auroc(
    pred_scores: ArrayLike, true_scores: ArrayLike, *, k: int, direction: Direction = "up"
) -> NDArray[np.float64]:
    """AUROC of the predicted scores for recovering the true top-``k`` genes.

    Positives are the true top-``k`` (highest for ``"up"``, lowest for ``"down"``, where the
    predicted scores are negated); the AUROC is the Mann-Whitney probability that a positive
    outscores a negative, ties counting half (as ``sklearn.metrics.roc_auc_score``). Genes with a
    non-finite true score are left out. 0.5 is chance, 1 is perfect.
    """
    _check_direction(direction)
    p, t = _pair(pred_scores, true_scores)
    out = np.full(p.shape[0], np.nan)
    for i in range(p.shape[0]):
        finite = np.flatnonzero(np.isfinite(t[i]))
        labels = np.zeros(p.shape[1], dtype=bool)
        labels[_top_set(t[i], k, direction)] = True
        score = p[i, finite] if direction == "up" else -p[i, finite]
        lab = labels[finite]
        n_pos = int(lab.sum())
        n_neg = lab.size - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _rankdata(score)
        out[i] = (ranks[lab].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


# --- baselines and the VCC score ----------------------------------------------------------------


def mean_of_centroids(
    X: ArrayLike | sp.spmatrix, labels: ArrayLike, *, exclude: Collection[str] = ()
) -> NDArray[np.float64]:
    """Equal-weight mean of the group centroids (mean profile of each label's cells).

    - cell-eval's VCC baseline (``build_base_mean_adata``) averages the centroids of *all* groups
      of the training data, the control's included: ``exclude=()``.
    - Systema's reference (``average_of_perturbation_centroids``) leaves the control out:
      ``exclude=(CONTROL,)``.
    """
    lab = np.asarray(labels).astype(str)
    keep = ~np.isin(lab, list(exclude))
    uniq, inv = np.unique(lab[keep], return_inverse=True)
    if uniq.size == 0:
        raise ValueError(f"no cells left after excluding {sorted(exclude)}")
    x = X[np.flatnonzero(keep)] if sp.issparse(X) else np.asarray(X)[keep]
    indicator = sp.csr_matrix(
        (np.ones(inv.size), (inv, np.arange(inv.size))), shape=(uniq.size, inv.size)
    )
    sums = indicator @ (x.astype(np.float64) if sp.issparse(x) else np.asarray(x, np.float64))
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    centroids = sums / np.bincount(inv)[:, None]
    return centroids.mean(axis=0)


def baseline_scaled(value: float, baseline: float, *, best: float) -> float:
    """Improvement over a baseline on a 0 (no better than the baseline) to 1 (perfect) scale.

    ``best = 0`` (errors): ``1 - value / baseline``; ``best = 1`` (scores): ``(value - baseline) /
    (1 - baseline)``. NaN becomes 0 and negatives are clipped to 0, as cell-eval's
    ``score_agg_metrics`` does; there is no upper clip.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if best == 0:
            scaled = 1.0 - np.float64(value) / np.float64(baseline)
        elif best == 1:
            scaled = (np.float64(value) - baseline) / (1.0 - np.float64(baseline))
        else:
            raise ValueError(f"'best' must be 0 or 1 for baseline scaling (got {best})")
    if not np.isfinite(scaled):
        return 0.0
    return float(max(scaled, 0.0))


def vcc_score(
    *,
    mae: float,
    des: float,
    pds: float,
    baseline_mae: float,
    baseline_des: float,
    baseline_pds: float,
) -> float:
    """The Virtual Cell Challenge score: mean of the three baseline-scaled metrics.

    Arguments are means over perturbations of :func:`mae`, :func:`des` and :func:`pds` for the
    model and for the baseline (cell-eval: every perturbation predicted as the mean of the training
    centroids, see :func:`mean_of_centroids`). MAE is scaled with ``1 - u / b``, DES and PDS with
    ``(u - b) / (1 - b)``; each is clipped at 0 (see :func:`baseline_scaled`).
    """
    parts = (
        baseline_scaled(mae, baseline_mae, best=0),
        baseline_scaled(des, baseline_des, best=1),
        baseline_scaled(pds, baseline_pds, best=1),
    )
    return float(np.mean(parts))
