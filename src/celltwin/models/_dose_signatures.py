"""Models of drug signatures over dose: one signature row per (drug, dose), predicted by name.

For data such as a LINCS L1000 plate, where every well is already a signature (robust z-scores
against the plate), there are no cells to shift: the models here fit on signature rows and
predict signature rows. ``fit(signatures)`` takes an AnnData whose ``obs`` holds
``perturbation`` (the drug) and ``dose`` (micromolar, a number or its string), one row per
(drug, dose), control rows excluded; ``predict(conditions=table)`` takes a table with the same
two columns and returns a ``(conditions, genes)`` float array.

Baselines: :class:`NearestDoseSignature` (the drug's row at the nearest training dose),
:class:`LinearLogDose` (linear interpolation in log dose), :class:`MeanOtherDrugs` (the other
drugs at the nearest dose). Learned: :class:`DoseResponse` (kernel regression in log dose for
measured drugs, chemical neighbours for new ones, settings chosen by cross-validation on the
training rows).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import DOSE, PERTURBATION
from ._errors import UnseenConditionError

__all__ = [
    "DoseSignatureModel",
    "LinearLogDose",
    "MeanOtherDrugs",
    "NearestDoseSignature",
    "log_dose",
]


def log_dose(dose: Any) -> np.ndarray:
    """``log10`` of doses in micromolar (numbers or strings), as float64."""
    values = np.asarray(pd.to_numeric(pd.Series(np.atleast_1d(dose)), errors="raise"), float)
    if (values <= 0).any() or not np.isfinite(values).all():
        bad = values[(values <= 0) | ~np.isfinite(values)][0]
        raise ValueError(f"'{DOSE}' must be positive micromolar doses (got {bad!r})")
    return np.log10(values)


def _table(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [k for k in (PERTURBATION, DOSE) if k not in frame.columns]
    if missing:
        raise KeyError(
            f"{where}: the table has no column(s) {missing}. Fix: give one row per (drug, dose) "
            f"with columns {[PERTURBATION, DOSE]}."
        )
    return pd.DataFrame(
        {PERTURBATION: frame[PERTURBATION].astype(str).to_numpy(), "x": log_dose(frame[DOSE])}
    )


class DoseSignatureModel(ABC):
    """Base of the dose-signature models: ``fit(signatures)``, ``predict(conditions=...)``.

    Fitted attributes: ``genes_``, ``drugs_`` (drug of each training row), ``log_dose_``
    (``log10`` dose of each row), ``x_`` (the rows).
    """

    name: ClassVar[str]
    genes_: list[str]
    drugs_: np.ndarray
    log_dose_: np.ndarray
    x_: np.ndarray

    def fit(self, signatures: AnnData, *, features: pd.DataFrame | None = None) -> Self:
        """Learn from training signatures (one row per drug and dose) and return the model.

        Parameters
        ----------
        signatures
            ``obs`` ``perturbation`` and ``dose``; ``X`` the signature rows.
        features
            Optional drug features (rows = drug names, numeric columns, e.g.
            :func:`celltwin.priors.drug_embedding`); used by models that predict new drugs.
        """
        if not isinstance(signatures, AnnData):
            raise TypeError(f"'signatures' must be an AnnData (got {type(signatures).__name__}).")
        table = _table(signatures.obs, f"{self.name}.fit")
        x = np.asarray(signatures.X, dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"{self.name}.fit: the signatures hold NaN or infinite values.")
        self.genes_ = [str(g) for g in signatures.var_names]
        self.drugs_ = table[PERTURBATION].to_numpy(dtype=object)
        self.log_dose_ = table["x"].to_numpy()
        self.x_ = x
        self._fit(features)
        return self

    def _fit(self, features: pd.DataFrame | None) -> None:  # noqa: B027 - optional hook
        """Learn more than the rows (models with settings to choose)."""

    def predict(self, *, conditions: pd.DataFrame) -> np.ndarray:
        """``(len(conditions), genes)`` predicted signatures of (drug, dose) rows."""
        if not hasattr(self, "x_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first.")
        table = _table(conditions, f"{self.name}.predict")
        return self._predict(table[PERTURBATION].to_numpy(dtype=object), table["x"].to_numpy())

    @abstractmethod
    def _predict(self, drugs: np.ndarray, x: np.ndarray) -> np.ndarray: ...

    def _rows_of(self, drug: str) -> np.ndarray:
        rows = np.flatnonzero(self.drugs_ == drug)
        if rows.size == 0:
            raise UnseenConditionError(
                f"{self.name} cannot predict drug {drug!r}: it has no training dose. Fix: use a "
                "model that predicts new drugs (mean_other_drugs, dose_response)."
            )
        return rows[np.argsort(self.log_dose_[rows], kind="stable")]


class NearestDoseSignature(DoseSignatureModel):
    """The drug's training signature at the dose nearest in ``log10`` (ties: the lower dose).

    The signature form of :class:`~celltwin.models.NearestDoseBaseline` (``nearest_dose``).
    """

    name = "nearest_dose"

    def _predict(self, drugs: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.zeros((drugs.size, len(self.genes_)))
        for i, (drug, target) in enumerate(zip(drugs, x, strict=True)):
            rows = self._rows_of(str(drug))  # sorted by dose: argmin keeps the lower on ties
            out[i] = self.x_[rows[np.argmin(np.abs(self.log_dose_[rows] - target))]]
        return out


def interpolate_log_dose(xs: np.ndarray, ys: np.ndarray, target: float) -> np.ndarray:
    """Linear interpolation of rows ``ys`` at ``target`` over sorted positions ``xs``.

    Inside the range: between the two bracketing rows. Outside: the line through the two
    nearest rows, extended. One row: that row.
    """
    if xs.size == 1:
        return ys[0].copy()
    j = int(np.clip(np.searchsorted(xs, target), 1, xs.size - 1))
    x0, x1 = xs[j - 1], xs[j]
    t = 0.0 if x1 == x0 else (target - x0) / (x1 - x0)
    return np.asarray((1 - t) * ys[j - 1] + t * ys[j])


class LinearLogDose(DoseSignatureModel):
    """Linear interpolation of the drug's training signatures in ``log10`` dose.

    Between the two training doses that bracket the query; beyond the measured range, the line
    through the two nearest doses extended (:func:`interpolate_log_dose`).
    """

    name = "linear_log_dose"

    def _predict(self, drugs: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.zeros((drugs.size, len(self.genes_)))
        for i, (drug, target) in enumerate(zip(drugs, x, strict=True)):
            rows = self._rows_of(str(drug))
            out[i] = interpolate_log_dose(self.log_dose_[rows], self.x_[rows], float(target))
        return out


def other_drug_mean(
    x: np.ndarray, drugs: np.ndarray, doses: np.ndarray, drug: str, target: float
) -> np.ndarray:
    """Mean over the other drugs of each one's row at its dose nearest ``target``."""
    others = [d for d in pd.unique(drugs) if d != drug]
    if not others:
        raise UnseenConditionError(f"no other drug to average for {drug!r}")
    rows = []
    for d in others:
        mine = np.flatnonzero(drugs == d)
        rows.append(mine[np.argmin(np.abs(doses[mine] - target))])
    return np.asarray(x[rows].mean(axis=0))


class MeanOtherDrugs(DoseSignatureModel):
    """The mean signature of the other training drugs, each at its dose nearest the query.

    Knows how the plate responds at that dose and nothing about the drug: the baseline of new
    drugs (any drug can be asked for).
    """

    name = "mean_other_drugs"

    def _predict(self, drugs: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.stack(
            [
                other_drug_mean(self.x_, self.drugs_, self.log_dose_, str(d), float(t))
                for d, t in zip(drugs, x, strict=True)
            ]
        )
