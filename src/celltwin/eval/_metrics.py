"""Metric functions: pure functions over arrays, one value per perturbation.

Conventions: the prediction then the truth are the two positional arguments, anything else is
keyword-only and named like the :class:`~celltwin.eval.MetricInputs` field it takes (so the
registry can pass inputs by name). Rows are perturbations (``P``), columns genes (``G``); "means"
are pseudobulk profiles (mean log1p expression of a perturbation's cells); "delta" is a mean minus
a control mean. Every per-perturbation metric returns a float64 array of shape ``(P,)``; NaN marks
a value that is undefined (e.g. a correlation with a constant vector).

Definitions follow the tools they come from:

- cell-eval 0.8.x (Virtual Cell Challenge): :func:`mae`, :func:`pds` (``discrimination_score_l1``),
  :func:`des` (``overlap_at_N``), :func:`pearson_delta` (and ``vcc_score`` in
  :mod:`celltwin.eval._scores`).
- GEARS: :func:`pearson_delta_top_de`, :func:`mse_top_de` (top DE genes by Welch t, control from the
  true data on both sides).
- Systema: :func:`systema_pearson_delta`, :func:`centroid_accuracy`.
- Rank metrics for signatures: :func:`spearman`, :func:`topk_overlap`, :func:`topk_auroc`.

Elsewhere: scGen's R² (:mod:`celltwin.eval._metrics_r2`), interaction recovery of combinations
(:mod:`celltwin.eval._metrics_interaction`) and the distributional metrics on cells
(:mod:`celltwin.eval._metrics_cells`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import cdist

from ._de import smallest_first

__all__ = [
    "centroid_accuracy",
    "des",
    "mae",
    "mse",
    "mse_top_de",
    "n_sig_spearman",
    "pds",
    "pearson_delta",
    "pearson_delta_top_de",
    "spearman",
    "systema_pearson_delta",
    "topk_auroc",
    "topk_overlap",
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
    return valid[smallest_first(key, k)]


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
        rank_sum = _rank_sum(score, lab)
        out[i] = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


def _rank_sum(score: NDArray[np.float64], chosen: NDArray[np.bool_]) -> float:
    """``rankdata(score)[chosen].sum()`` (average ranks; NaN if any score is NaN) by one sort.

    A value's average rank is ``(below + up_to + 1) / 2`` with ``below`` / ``up_to`` the
    counts of values ``<`` / ``<=`` it. Ranks are multiples of 1/2, so their float64 sum is
    exact in any order: the same number as ``rankdata``'s.
    """
    if np.isnan(score).any():
        return float("nan")
    ordered = np.sort(score)
    values = score[chosen]
    below = np.searchsorted(ordered, values, side="left")
    up_to = np.searchsorted(ordered, values, side="right")
    return float(((below + up_to + 1) / 2.0).sum())
