"""Units of evaluation: a perturbation, joined with its dose when cells have one."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .._keys import CONTROL, DOSE, PERTURBATION

__all__ = ["DOSE_JOIN", "preview", "show_unit", "split_unit", "unit_labels"]

#: Joins perturbation and dose into one group label inside eval (never shown).
DOSE_JOIN = "\x1f"


def preview(values: Iterable[object], limit: int = 8) -> str:
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def unit_labels(obs: pd.DataFrame) -> NDArray[np.str_]:
    """Perturbation, joined with the dose when there is one: the unit metrics are computed for."""
    pert = obs[PERTURBATION].astype(str).to_numpy()
    if DOSE not in obs.columns:
        return pert.astype(str)
    dose = obs[DOSE].astype(object).where(obs[DOSE].notna(), "").astype(str).to_numpy()
    with_dose = (dose != "") & (pert != CONTROL)
    return np.where(with_dose, np.char.add(np.char.add(pert, DOSE_JOIN), dose), pert).astype(str)


def split_unit(label: str) -> tuple[str, str]:
    pert, _, dose = label.partition(DOSE_JOIN)
    return pert, dose


def show_unit(label: str) -> str:
    pert, dose = split_unit(label)
    return f"{pert} ({dose} uM)" if dose else pert
