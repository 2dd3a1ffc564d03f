"""A blend of the ridge context transfer and the target context's mean signature.

The ridge transfer (:class:`ContextTransferLinear`) orders all genes best (Spearman), while the
target context's mean response (:class:`MeanOtherPerturbations`) often names its top genes
better: the genes a context moves under most perturbations are the ones its top lists share.
:class:`SignatureBlend` mixes the two standardised rows with one weight per target context,
chosen on a replay of that context's few-shot task in the other training contexts, so no
held-out row ever shapes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._keys import CONTEXT
from ._context_transfer import ContextTransferLinear
from ._model import expect_shape
from ._signature_data import SignatureData, nanmean_rows
from ._signature_means import MeanOtherPerturbations
from ._signature_model import SignatureModel

#: Top-list sizes of the blend's objective (the suites' top-k metrics).
_TOP_K = (50, 100)
#: Values of :class:`SignatureBlend`'s ``objective``.
OBJECTIVES = ("maximin", "mean")


def standardise_rows(x: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit standard deviation over its columns (0 if constant)."""
    centred = x - x.mean(axis=1, keepdims=True)
    sd = centred.std(axis=1, keepdims=True)
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks along rows (0 = smallest; ties broken by position, which is enough here)."""
    out = np.empty_like(x)
    order = np.argsort(x, axis=1, kind="stable")
    np.put_along_axis(out, order, np.arange(x.shape[1], dtype=x.dtype)[None, :], axis=1)
    return out


def rank_metrics(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row, the signature suites' rank metrics of ``pred`` against ``truth``.

    Columns: the Spearman correlation over the genes the truth measures (not ``NaN``), then the
    overlap of the predicted and true top-50 up, top-50 down, top-100 up and top-100 down genes.
    Rows whose truth is a top list (most genes tied at its minimum) are scored on Spearman over
    the listed genes and the up overlaps only (down: ``NaN``), as the suites score them.
    """
    out = np.full((pred.shape[0], 1 + 2 * len(_TOP_K)), np.nan)
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        keep = ~np.isnan(t)
        p, t = p[keep], t[keep]
        top_list = np.mean(t == t.min()) > 0.5
        listed = t > t.min() if top_list else np.ones(t.size, dtype=bool)
        out[i, 0] = _spearman(p[listed], t[listed])
        for j, (k, side) in enumerate((k, s) for k in _TOP_K for s in (1, -1)):
            if k >= t.size or (top_list and side < 0):
                continue
            true_top = np.argpartition(-side * t, k)[:k]
            pred_top = np.argpartition(-side * p, k)[:k]
            out[i, 1 + j] = np.intersect1d(true_top, pred_top).size / k
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3:
        return 0.0
    ra, rb = _ranks(a[None, :])[0], _ranks(b[None, :])[0]
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb / denom) if denom > 0 else 0.0


def simulate_few_shot(
    data: SignatureData,
    x: np.ndarray,
    *,
    target: int,
    repeats: int,
    max_rows: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transfer and context-mean predictions of simulated few-shot tasks, with their truth.

    The task of a target context ``t`` with ``n`` training rows is replayed in every other
    context ``c`` that has more rows (of perturbations also measured elsewhere): ``repeats``
    times, ``n`` of them are kept as ``c``'s few-shot examples and the others are hidden and
    predicted, by the ridge transfer from their other contexts and by the mean of the examples.
    Returns ``(transfer, mean, truth)`` rows (at most ``max_rows``, a seeded draw); empty when no
    context can replay the task. ``x`` is ``data.x`` filled (:meth:`SignatureData.filled`).
    """
    base = ContextTransferLinear()
    n = int((data.row_context == target).sum())
    measured = (data.index >= 0).sum(axis=0)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for c in range(len(data.contexts)):
        rows = np.flatnonzero((data.row_context == c) & (measured[data.row_perturbation] >= 2))
        if c == target or rows.size <= max(n, 2):
            continue
        for _ in range(repeats):
            examples = rng.choice(rows, size=n, replace=False)
            hidden = np.setdiff1d(rows, examples)
            index = data.index.copy()
            index[c, data.row_perturbation[hidden]] = -1
            groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
            for r in hidden:
                measured_in = np.flatnonzero(index[:, data.row_perturbation[r]] >= 0)
                groups[tuple(int(s) for s in measured_in)].append(int(r))
            mean = nanmean_rows(data.x[examples])
            for sources, members in groups.items():
                shared = np.flatnonzero((index[[c, *sources]] >= 0).all(axis=0))
                if shared.size < 2:
                    continue
                fit = base._regression(x, index, c, sources, shared)
                for r in members:
                    p = data.row_perturbation[r]
                    out.append((fit.predict([x[index[s, p]] for s in sources]), mean, data.x[r]))
    if len(out) > max_rows:
        out = [out[i] for i in np.sort(rng.choice(len(out), size=max_rows, replace=False))]
    if not out:
        empty = np.zeros((0, len(data.genes)))
        return empty, empty, empty
    return tuple(np.stack(part) for part in zip(*out, strict=True))  # type: ignore[return-value]


class SignatureBlend(SignatureModel):
    """``w[c] · z(transfer) + (1 - w[c]) · z(context mean)``, ``w`` learned per context.

    For (context ``c``, perturbation ``p``) the prediction mixes two standardised rows (centred
    and scaled over genes, see :func:`standardise_rows`): the :class:`ContextTransferLinear`
    prediction and the :class:`MeanOtherPerturbations` prediction (``c``'s mean training row).
    Rank metrics ignore the scale of a row, so the blend is a ranking.

    The weight ``w[c]`` is the value of ``weights`` that scores best, by the rank metrics of
    :func:`rank_metrics` (Spearman, top-50/100 up and down overlap), on a replay of ``c``'s
    task in the other training contexts (:func:`simulate_few_shot`): each context with more
    rows keeps as many few-shot examples as ``c`` has rows and predicts the rest, ``repeats``
    times, so the weight reflects how well the transfer does with ``c``'s number of examples.
    ``objective="maximin"`` maximises the smallest gain over the context mean alone across the
    metrics (a blend that improves every metric, as evenly as it can); ``"mean"`` maximises
    their average. No held-out row is ever used. A context whose task cannot be replayed
    (fewer than ``min_rows`` replayed rows) gets the largest weight of the grid (the transfer).

    Predicting needs what both parts need (a training context with other perturbations and
    ``p`` measured in another context), else :class:`UnseenConditionError`.

    Parameters
    ----------
    weights
        Candidate weights of the transfer row, in [0, 1].
    objective
        ``"maximin"`` or ``"mean"`` (above).
    repeats
        Replays of the few-shot task per other context.
    min_rows
        Fewest replayed rows for a weight of its own.
    max_rows
        Replayed rows scored per context when choosing its weight (a seeded draw).
    seed
        Seed of the replays' example draws and of the row draw.

    Fitted attributes: ``scores_`` (training rows), ``weights_`` (one per context of
    ``contexts_``), ``contexts_``.
    """

    name = "signature_blend"

    def __init__(
        self,
        weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        objective: str = "maximin",
        repeats: int = 2,
        min_rows: int = 3,
        max_rows: int = 400,
        seed: int = 0,
    ) -> None:
        self.weights = weights
        self.objective = objective
        self.repeats = repeats
        self.min_rows = min_rows
        self.max_rows = max_rows
        self.seed = seed

    def _check_params(self) -> None:
        grid = [float(w) for w in self.weights]
        if not grid or any(not 0.0 <= w <= 1.0 for w in grid):
            raise ValueError(
                f"signature_blend: 'weights' must be numbers in [0, 1] (got {self.weights!r})."
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"signature_blend: 'objective' must be one of {OBJECTIVES} "
                f"(got {self.objective!r})."
            )
        for key, low in (("repeats", 1), ("min_rows", 1), ("max_rows", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"signature_blend: {key!r} must be a whole number >= {low} (got {value!r})."
                )

    def _fit(self, data: SignatureData) -> None:
        self._check_params()
        x, _ = data.filled()
        self.scores_: np.ndarray = data.x.copy()
        self.contexts_: list[str] = list(data.contexts)
        rng = np.random.default_rng(int(self.seed))
        grid = np.array([float(w) for w in self.weights])
        best = []
        for t in range(len(data.contexts)):
            transfer, mean, truth = simulate_few_shot(
                data,
                x,
                target=t,
                repeats=int(self.repeats),
                max_rows=int(self.max_rows),
                rng=rng,
            )
            if truth.shape[0] < int(self.min_rows):
                best.append(int(np.argmax(grid)))
                continue
            zt, zm = standardise_rows(transfer), standardise_rows(mean)
            table = np.stack(
                [_column_means(rank_metrics(w * zt + (1 - w) * zm, truth)) for w in grid]
            )
            ref = _column_means(rank_metrics(zm, truth))
            best.append(int(np.argmax(self._objective(table, ref))))
        self.weights_: np.ndarray = grid[best]

    def _objective(self, table: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Score of each weight (rows of ``table``, metrics in columns) under ``objective``."""
        if self.objective == "mean":
            return np.nanmean(table, axis=1)
        gains = table - ref[None, :]
        return np.min(np.where(np.isnan(gains), np.inf, gains), axis=1)

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_", "weights_")

    def _json_names(self) -> tuple[str, ...]:
        return ("contexts_",)

    def _check_state(self) -> None:
        super()._check_state()
        expect_shape(self, "weights_", (len(self.contexts_),))

    def _parts(self) -> tuple[ContextTransferLinear, MeanOtherPerturbations]:
        data = self._training()
        transfer, mean = ContextTransferLinear(), MeanOtherPerturbations()
        for part in (transfer, mean):
            part.genes_, part.pairs_, part.scores_ = self.genes_, self.pairs_, data.x
        return transfer, mean

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        transfer, mean = self._parts()
        zt = standardise_rows(transfer._predict(table))
        zm = standardise_rows(mean._predict(table))
        of = {c: w for c, w in zip(self.contexts_, self.weights_, strict=True)}
        w = np.array([of[c] for c in table[CONTEXT]])[:, None]
        return w * zt + (1 - w) * zm

    def blend_weights(self) -> dict[str, float]:
        """The fitted transfer weight of each context."""
        self._check_fitted()
        return {c: float(w) for c, w in zip(self.contexts_, self.weights_, strict=True)}


def _column_means(x: np.ndarray) -> np.ndarray:
    """Column means over the non-NaN entries (NaN for an all-NaN column, without a warning)."""
    count = (~np.isnan(x)).sum(axis=0)
    total = np.nansum(x, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
