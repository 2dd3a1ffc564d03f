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


class DoseResponse(DoseSignatureModel):
    """Kernel regression in log dose for measured drugs; chemical neighbours for new drugs.

    A drug with training doses, at dose ``t`` (``log10``)::

        pred = (1 - lam) · kernel_fit(drug's rows, t; bandwidth, degree) + lam · m(t)

    with ``m(t)`` the other drugs' mean at their dose nearest ``t`` (:class:`MeanOtherDrugs`):
    all the drug's doses inform the prediction, weighted by closeness in log dose, which
    averages out the noise of single wells that the nearest dose or linear interpolation keep.
    ``(bandwidth, degree, lam)`` is chosen from the grid by cross-validation on the training
    rows that mimics the query: for a dose inside the drug's training range, each drug's
    interior doses are hidden one at a time (``interior_``); outside it, each drug's highest and
    lowest doses (``exterior_``). The score is the mean Spearman correlation over genes.

    A drug without training rows, at dose ``t``: the other drugs' rows at their dose nearest
    ``t``, weighted by ``softmax(tanimoto(fingerprints) / temperature)`` over the drugs with
    features; ``temperature = inf`` is their plain mean. The temperature is chosen by
    leave-one-drug-out over the training drugs with features (``temperature_``). A drug without
    features gets the plain mean of the other drugs.

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
    """

    name = "dose_response"

    def __init__(
        self,
        bandwidths: Sequence[float] = (0.2, 0.4, 0.8, 1.6, 10.0),
        degrees: Sequence[int] = (0, 1),
        shrinkage: Sequence[float] = (0.0, 0.2, 0.4),
        temperatures: Sequence[float] = (0.02, 0.05, 0.1, 0.2, float("inf")),
    ) -> None:
        self.bandwidths = bandwidths
        self.degrees = degrees
        self.shrinkage = shrinkage
        self.temperatures = temperatures

    # --- fit -------------------------------------------------------------------------------------

    def _fit(self, features: pd.DataFrame | None) -> None:
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
        self.features_ = None if features is None else features.astype(np.float64)
        self.interior_, self.cv_interior_ = self._choose(interior=True)
        self.exterior_, self.cv_exterior_ = self._choose(interior=False)
        self.temperature_, self.cv_temperature_ = self._choose_temperature()

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

    def _choose(self, *, interior: bool) -> tuple[tuple[float, int, float], float]:
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
                    self.x_, self.drugs_, self.log_dose_, str(self.drugs_[r]), self.log_dose_[r]
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
                        self.x_[rest],
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

    def _similarity(self, drugs: Sequence[str], others: Sequence[str]) -> np.ndarray | None:
        if self.features_ is None:
            return None
        feats = self.features_
        a = feats.reindex([str(d) for d in drugs]).to_numpy()
        b = feats.reindex([str(d) for d in others]).to_numpy()
        return tanimoto(np.nan_to_num(a), np.nan_to_num(b))

    def _neighbours(self, drug: str, target: float, temperature: float) -> np.ndarray:
        others = [d for d in pd.unique(self.drugs_) if d != drug]
        rows = []
        for d in others:
            mine = np.flatnonzero(self.drugs_ == d)
            rows.append(mine[np.argmin(np.abs(self.log_dose_[mine] - target))])
        x = self.x_[rows]
        featured = self.features_ is not None and drug in self.features_.index
        if not featured or not np.isfinite(temperature):
            return np.asarray(x.mean(axis=0))
        assert self.features_ is not None
        has = np.array([d in self.features_.index for d in others])
        if not has.any():
            return np.asarray(x.mean(axis=0))
        sim = self._similarity([drug], [d for d, h in zip(others, has, strict=True) if h])
        assert sim is not None
        logits = sim[0] / temperature
        w = np.exp(logits - logits.max())
        return np.asarray(w @ x[has] / w.sum())

    def _choose_temperature(self) -> tuple[float, float]:
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
                [self._neighbours(str(self.drugs_[r]), self.log_dose_[r], t) for r in rows]
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
                out[i] = self._neighbours(drug, float(target), self.temperature_)
                continue
            rows = self._rows_of(drug)
            doses = self.log_dose_[rows]
            inside = doses.min() <= target <= doses.max()
            bandwidth, degree, lam = self.interior_ if inside else self.exterior_
            curve = kernel_fit(
                doses, self.x_[rows], float(target), bandwidth=bandwidth, degree=degree
            )
            mean = other_drug_mean(self.x_, self.drugs_, self.log_dose_, drug, float(target))
            out[i] = (1 - lam) * curve + lam * mean
        return out


#: The dose-signature models by name (baselines first, then the learned model).
DOSE_MODELS: dict[str, type[DoseSignatureModel]] = {
    m.name: m for m in (NearestDoseSignature, LinearLogDose, MeanOtherDrugs, DoseResponse)
}
