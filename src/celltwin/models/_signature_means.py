"""The mean baselines of signature data: the perturbation elsewhere, the context's mean."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION
from ._signature_data import SignatureData, nanmean_rows
from ._signature_model import SignatureModel, unseen


class MeanOtherContexts(SignatureModel):
    """The perturbation's mean score over the other contexts where it was measured.

    For (context ``c``, perturbation ``p``): the gene-wise mean of the training rows of ``p`` in
    contexts other than ``c`` (genes not measured are skipped; 0 when no row measured a gene). It
    is the "measured elsewhere, used as is" prediction: with one other context, that context's
    signature itself. Any target context can be asked for, even one without training rows; a
    perturbation measured in no other context raises :class:`UnseenConditionError`.

    References
    ----------
    The cross-context reference of signature-transfer studies (e.g. the sigrecon package,
    montilab; the NeurIPS 2023 challenge baselines, Szalata et al. 2024).
    """

    name = "mean_other_contexts"

    def __init__(self) -> None:
        pass

    def _fit(self, data: SignatureData) -> None:
        self.scores_: np.ndarray = data.x.copy()

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_",)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        data = self._training()
        c_of = {c: i for i, c in enumerate(data.contexts)}
        p_of = {p: i for i, p in enumerate(data.perturbations)}
        out = np.zeros((len(table), len(data.genes)))
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if pert not in p_of:
                raise unseen(self.name, context, pert, "it has no training signature at all")
            rows = data.index[:, p_of[pert]].copy()
            if context in c_of:
                rows[c_of[context]] = -1
            rows = rows[rows >= 0]
            if rows.size == 0:
                raise unseen(self.name, context, pert, "it was measured in no other context")
            out[i] = nanmean_rows(data.x[rows])
        return out


class MeanOtherPerturbations(SignatureModel):
    """The target context's mean score over its training perturbations.

    For (context ``c``, perturbation ``p``): the gene-wise mean of the training rows of ``c``
    other than ``p`` itself (genes not measured skipped). It knows the context's typical
    response and nothing about ``p``; a context without training rows raises
    :class:`UnseenConditionError`.

    References
    ----------
    The "mean" baseline of perturbation benchmarks (Ahlmann-Eltze, Huber & Anders, Nat Methods
    2025; Systema, Viñas Torné et al., Nat Biotechnol 2025), on signature scores.
    """

    name = "mean_other_perturbations"

    def __init__(self) -> None:
        pass

    def _fit(self, data: SignatureData) -> None:
        self.scores_: np.ndarray = data.x.copy()

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_",)

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        data = self._training()
        c_of = {c: i for i, c in enumerate(data.contexts)}
        out = np.zeros((len(table), len(data.genes)))
        for i, (context, pert) in enumerate(zip(table[CONTEXT], table[PERTURBATION], strict=True)):
            if context not in c_of:
                raise unseen(self.name, context, pert, "the context has no training signatures")
            rows = np.flatnonzero(data.row_context == c_of[context])
            perts = np.asarray(data.perturbations, dtype=object)[data.row_perturbation[rows]]
            rows = rows[perts != pert]
            if rows.size == 0:
                raise unseen(self.name, context, pert, "the context has no other perturbation")
            out[i] = nanmean_rows(data.x[rows])
        return out
