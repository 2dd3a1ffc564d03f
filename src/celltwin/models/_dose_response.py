"""The learned dose-signature model: kernel regression in log dose, chemical neighbours."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import pandas as pd

from ._dose_signatures import (
    DoseSignatureModel,
    LinearLogDose,
    MeanOtherDrugs,
    NearestDoseSignature,
    other_drug_mean,
)


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` (ties by position)."""
    ra = np.argsort(np.argsort(a, axis=1), axis=1).astype(np.float64)
    rb = np.argsort(np.argsort(b, axis=1), axis=1).astype(np.float64)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    return np.divide((ra * rb).sum(axis=1), denom, out=np.zeros(a.shape[0]), where=denom > 0)


def kernel_fit(
    xs: np.ndarray, ys: np.ndarray, target: float, *, bandwidth: float, degree: int
) -> np.ndarray:
    """Gaussian-kernel regression of rows ``ys`` on positions ``xs``, evaluated at ``target``.

    ``degree`` 0: the kernel-weighted mean; 1: local linear (weighted least squares of a line
    centred at ``target``, its intercept), which extends a trend beyond the measured range.
    """
    w = np.exp(-0.5 * ((xs - target) / bandwidth) ** 2)
    if w.sum() <= 1e-12:  # far from every row: the nearest one
        w = (np.abs(xs - target) == np.abs(xs - target).min()).astype(np.float64)
    if degree == 0 or xs.size < 2:
        return np.asarray(w @ ys / w.sum())
    design = np.stack([np.ones_like(xs), xs - target], axis=1)
    root = np.sqrt(w / w.max())[:, None]
    coef = np.linalg.lstsq(root * design, root * ys, rcond=None)[0]
    return np.asarray(coef[0])


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto similarity of binary fingerprints, rows of ``a`` against rows of ``b``."""
    a, b = (a > 0).astype(np.float64), (b > 0).astype(np.float64)
    both = a @ b.T
    either = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - both
    return np.divide(both, either, out=np.zeros_like(both), where=either > 0)


def transform_rows(x: np.ndarray, kind: str) -> np.ndarray:
    """Signature rows made robust before averaging: ``"none"``; ``"rank"`` (each row's ranks
    scaled to [-1, 1]); ``"clip"`` (z-scores clipped at +-3)."""
    if kind == "rank":
        ranks = np.argsort(np.argsort(x, axis=1), axis=1).astype(np.float64)
        return ranks / max(x.shape[1] - 1, 1) * 2 - 1
    if kind == "clip":
        return np.clip(x, -3.0, 3.0)
    if kind == "none":
        return x
    raise ValueError(f"dose_response: unknown transform {kind!r}; use one of {TRANSFORMS}")


#: Row transforms :class:`DoseResponse` chooses from.
TRANSFORMS = ("none", "rank", "clip")


class DoseResponse(DoseSignatureModel):
    """Kernel regression in log dose for measured drugs; chemical neighbours for new drugs.

    A drug with training doses, at dose ``t`` (``log10``), from its rows made robust by a
    per-row transform ``T`` (:func:`transform_rows`: none, ranks, or z-scores clipped at 3;
    single wells carry outlying z-scores that dominate a plain average)::

        pred = (1 - lam) · kernel_fit(T(drug's rows), t; bandwidth, degree) + lam · m(t)

    with ``m(t)`` the other drugs' mean (of ``T(rows)``) at their dose nearest ``t``
    (:class:`MeanOtherDrugs`): all the drug's doses inform the prediction, weighted by closeness
    in log dose, which averages out the noise of single wells that the nearest dose or linear
    interpolation keep. ``(T, bandwidth, degree, lam)`` is chosen from the grid by
    cross-validation on the training rows that mimics the query: for a dose inside the drug's
    training range, each drug's interior doses are hidden one at a time (``interior_``);
    outside it, each drug's highest and lowest doses (``exterior_``). The score is the mean
    Spearman correlation over genes with the raw rows.

    A drug without training rows, at dose ``t``: the other drugs' ``T(rows)`` at their dose
    nearest ``t``, weighted by ``softmax(tanimoto(fingerprints) / temperature)`` over the drugs
    with features; ``temperature = inf`` is their plain mean. ``(T, temperature)`` is chosen by
    leave-one-drug-out over the training drugs with features (``temperature_``). A drug without
    features gets the plain mean of the other drugs' ``T(rows)``.

    Parameters
    ----------
    bandwidths
        Kernel widths in ``log10`` dose.
    degrees
        Local polynomial degrees (0 and/or 1).
    shrinkage
        Candidate weights ``lam`` of the other drugs' mean.
    temperatures
        Softmax temperatures over Tanimoto similarity (``inf`` allowed).
    transforms
        Candidate row transforms (of :data:`TRANSFORMS`).
    """

    name = "dose_response"

    def __init__(
        self,
        bandwidths: Sequence[float] = (0.2, 0.4, 0.8, 1.6, 10.0),
        degrees: Sequence[int] = (0, 1),
        shrinkage: Sequence[float] = (0.0, 0.2, 0.4),
        temperatures: Sequence[float] = (0.02, 0.05, 0.1, 0.2, float("inf")),
        transforms: Sequence[str] = TRANSFORMS,
    ) -> None:
        self.bandwidths = bandwidths
        self.degrees = degrees
        self.shrinkage = shrinkage
        self.temperatures = temperatures
        self.transforms = transforms

    # --- fit -------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if not self.bandwidths or any(float(b) <= 0 for b in self.bandwidths):
            raise ValueError(
                f"dose_response: 'bandwidths' must be positive (got {self.bandwidths!r})"
            )
        if not self.degrees or any(int(d) not in (0, 1) for d in self.degrees):
            raise ValueError(f"dose_response: 'degrees' must be 0 or 1 (got {self.degrees!r})")
        if not self.shrinkage or any(not 0 <= float(s) <= 1 for s in self.shrinkage):
            raise ValueError(
                f"dose_response: 'shrinkage' must lie in [0, 1] (got {self.shrinkage!r})"
            )
        if not self.temperatures or any(float(t) <= 0 for t in self.temperatures):
            raise ValueError(
                f"dose_response: 'temperatures' must be positive (got {self.temperatures!r})"
            )
        if not self.transforms or any(t not in TRANSFORMS for t in self.transforms):
            raise ValueError(
                f"dose_response: 'transforms' must be among {TRANSFORMS} (got {self.transforms!r})"
            )

    def _fit(self, features: pd.DataFrame | None) -> None:
        self._check_params()
        self.features_ = None if features is None else features.astype(np.float64)
        interior: list[tuple[tuple[str, float, int, float], float]] = []
        exterior: list[tuple[tuple[str, float, int, float], float]] = []
        neighbours: list[tuple[tuple[str, float], float]] = []
        for kind in self.transforms:
            x = transform_rows(self.x_, kind)
            for table, (setting, score) in (
                (interior, self._choose(x, interior=True)),
                (exterior, self._choose(x, interior=False)),
            ):
                table.append(((kind, *setting), score))
            temperature, score = self._choose_temperature(x)
            neighbours.append(((kind, temperature), score))
        (self.interior_, self.cv_interior_) = max(interior, key=_cv_score)
        (self.exterior_, self.cv_exterior_) = max(exterior, key=_cv_score)
        (self.temperature_, self.cv_temperature_) = max(neighbours, key=_cv_score)

    def _held_rows(self, interior: bool) -> list[tuple[int, np.ndarray]]:
        """(hidden row, the drug's other rows) pairs of the cross-validation."""
        out = []
        for drug in pd.unique(self.drugs_):
            rows = self._rows_of(str(drug))
            if rows.size < 3:
                continue
            hidden = rows[1:-1] if interior else rows[[0, -1]]
            out += [(int(r), rows[rows != r]) for r in hidden]
        return out

    def _choose(self, x: np.ndarray, *, interior: bool) -> tuple[tuple[float, int, float], float]:
        """Best (bandwidth, degree, lam) on rows ``x`` and its cross-validated score."""
        held = self._held_rows(interior)
        grid = list(
            product(
                [float(b) for b in self.bandwidths],
                [int(d) for d in self.degrees],
                [float(s) for s in self.shrinkage],
            )
        )
        if not held:
            return grid[0], float("nan")
        truth = self.x_[[r for r, _ in held]]
        means = np.stack(
            [
                other_drug_mean(
                    x, self.drugs_, self.log_dose_, str(self.drugs_[r]), self.log_dose_[r]
                )
                for r, _ in held
            ]
        )
        scores = []
        for bandwidth, degree, lam in grid:
            pred = np.stack(
                [
                    kernel_fit(
                        self.log_dose_[rest],
                        x[rest],
                        self.log_dose_[r],
                        bandwidth=bandwidth,
                        degree=degree,
                    )
                    for r, rest in held
                ]
            )
            scores.append(float(row_spearman((1 - lam) * pred + lam * means, truth).mean()))
        best = int(np.argmax(scores))
        return grid[best], scores[best]

    def _neighbours(
        self, x: np.ndarray, drug: str, target: float, temperature: float
    ) -> np.ndarray:
        """Similarity-weighted mean of the other drugs' rows ``x`` at their dose nearest ``target``."""
        others = [d for d in pd.unique(self.drugs_) if d != drug]
        rows = []
        for d in others:
            mine = np.flatnonzero(self.drugs_ == d)
            rows.append(mine[np.argmin(np.abs(self.log_dose_[mine] - target))])
        near = x[rows]
        feats = self.features_
        if feats is None or drug not in feats.index or not np.isfinite(temperature):
            return np.asarray(near.mean(axis=0))
        has = np.array([d in feats.index for d in others])
        if not has.any():
            return np.asarray(near.mean(axis=0))
        sim = tanimoto(
            feats.loc[[drug]].to_numpy(),
            feats.loc[[d for d, h in zip(others, has, strict=True) if h]].to_numpy(),
        )[0]
        logits = sim / temperature
        w = np.exp(logits - logits.max())
        return np.asarray(w @ near[has] / w.sum())

    def _choose_temperature(self, x: np.ndarray) -> tuple[float, float]:
        """Best temperature on rows ``x`` (leave one drug out) and its score."""
        temps = [float(t) for t in self.temperatures]
        if self.features_ is None:
            return float("inf"), float("nan")
        rows = [i for i, d in enumerate(self.drugs_) if d in self.features_.index]
        if len(set(self.drugs_[rows])) < 3:
            return float("inf"), float("nan")
        truth = self.x_[rows]
        scores = []
        for t in temps:
            pred = np.stack(
                [self._neighbours(x, str(self.drugs_[r]), self.log_dose_[r], t) for r in rows]
            )
            scores.append(float(row_spearman(pred, truth).mean()))
        best = int(np.argmax(scores))
        return temps[best], scores[best]

    # --- predict ---------------------------------------------------------------------------------

    def _predict(self, drugs: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.zeros((drugs.size, len(self.genes_)))
        for i, (drug, target) in enumerate(zip(drugs, x, strict=True)):
            drug = str(drug)
            if not (self.drugs_ == drug).any():
                kind, temperature = self.temperature_
                rows_t = transform_rows(self.x_, str(kind))
                out[i] = self._neighbours(rows_t, drug, float(target), float(temperature))
                continue
            rows = self._rows_of(drug)
            doses = self.log_dose_[rows]
            inside = doses.min() <= target <= doses.max()
            kind, bandwidth, degree, lam = self.interior_ if inside else self.exterior_
            rows_t = transform_rows(self.x_, str(kind))
            curve = kernel_fit(
                doses, rows_t[rows], float(target), bandwidth=float(bandwidth), degree=int(degree)
            )
            mean = other_drug_mean(rows_t, self.drugs_, self.log_dose_, drug, float(target))
            out[i] = (1 - float(lam)) * curve + float(lam) * mean
        return out


def _cv_score(item: tuple[object, float]) -> float:
    """Score of a (setting, score) pair for ``max`` (NaN counts as the worst)."""
    return item[1] if np.isfinite(item[1]) else -np.inf


#: The dose-signature models by name (baselines first, then the learned model).
DOSE_MODELS: dict[str, type[DoseSignatureModel]] = {
    m.name: m for m in (NearestDoseSignature, LinearLogDose, MeanOtherDrugs, DoseResponse)
}
