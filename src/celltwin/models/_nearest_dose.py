"""A baseline for unseen doses: the drug's training effect at the nearest dose."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._keys import CONTEXT, DOSE, PERTURBATION
from ._conditions import ConditionKey, dose_components
from ._conditions import condition_label as describe
from ._effects import EffectModel


def _log_dose(dose: str) -> NDArray[np.float64]:
    values = np.array([float(d) if d else 0.0 for d in dose.split("+")], dtype=np.float64)
    return np.log10(np.maximum(values, 1e-12))


class NearestDoseBaseline(EffectModel):
    """Shift control cells by the drug's training effect at the nearest dose (in log dose).

    For condition ``(c, p, dose)`` the candidates are the training conditions of ``p`` in
    context ``c``; the one whose dose is closest in ``log10`` (summed over the components of a
    combination) gives the effect (ties: the lower dose). Perturbations without training cells
    in ``c`` are refused. The baseline of unseen doses (benchmark suite ``sim-doses``).
    """

    name = "nearest_dose"
    predicts = "cells"

    def __init__(self) -> None:
        pass

    def _effects(self, keys: list[ConditionKey]) -> np.ndarray:
        table = self.conditions_
        out = np.zeros((len(keys), len(self.genes_)))
        problems = []
        for i, key in enumerate(keys):
            context, perturbation, dose = key
            rows = np.flatnonzero(
                (table[CONTEXT].to_numpy() == context)
                & (table[PERTURBATION].to_numpy() == perturbation)
            )
            if rows.size == 0:
                problems.append(f"{describe(key)} (no training dose of it in that context)")
                continue
            target = _log_dose(dose) if dose else np.zeros(len(dose_components(perturbation, "")))
            candidates = [
                (float(np.abs(_log_dose(str(table[DOSE].iloc[r])) - target).sum()), r) for r in rows
            ]
            best = min(candidates, key=lambda c: (c[0], _log_dose(str(table[DOSE].iloc[c[1]]))[0]))
            out[i] = self.delta_[best[1]]
        self._refuse(problems, fix="nearest_dose needs the drug measured in the same context.")
        return out
