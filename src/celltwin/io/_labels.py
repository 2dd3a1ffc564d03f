"""Source labels read in celltwin's terms: perturbation types, control parts, times in hours."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._keys import (
    CONTROL,
    CRISPR_KO,
    CRISPRA,
    CRISPRI,
    DRUG,
    OTHER,
    PERTURBATION_TYPES,
    split_label,
)
from ._problems import Problem, ValidationError

# Spellings of perturbation types seen in the field (lower case, letters and digits only).
TYPE_ALIASES: dict[str, str] = {
    **{re.sub(r"[^a-z0-9]", "", t): t for t in PERTURBATION_TYPES},
    "ctrl": CONTROL,
    "crispr": CRISPR_KO,
    "crisprcas9": CRISPR_KO,
    "cas9": CRISPR_KO,
    "ko": CRISPR_KO,
    "knockout": CRISPR_KO,
    "crisprinterference": CRISPRI,
    "knockdown": CRISPRI,
    "crispractivation": CRISPRA,
    "activation": CRISPRA,
    "compound": DRUG,
    "smallmolecule": DRUG,
    "chemical": DRUG,
}

UNIT_SUFFIX = re.compile(r"(?:^|_)(pm|nm|um|µm|μm|mm)$", re.IGNORECASE)
_TIME_VALUE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*([A-Za-z]*)\s*$")
HOURS_PER_UNIT = {"": 1.0, "h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0}
HOURS_PER_UNIT |= {"d": 24.0, "day": 24.0, "days": 24.0, "min": 1 / 60, "mins": 1 / 60}
HOURS_PER_UNIT |= {"minute": 1 / 60, "minutes": 1 / 60}


# --- labels ----------------------------------------------------------------------------------


def canonical_components(label: str, *, null_components: frozenset[str]) -> list[int]:
    """Positions of the parts of ``label`` that are real targets (not control or ``ctrl``)."""
    return [i for i, part in enumerate(split_label(label)) if part and part not in null_components]


def map_perturbation_type(value: object) -> str | None:
    """Map a source perturbation type (``"CRISPRi"``, ``"compound"``) to a canonical one."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    key = re.sub(r"[^a-z0-9]", "", str(value).lower())
    if key in ("", "nan", "none"):
        return None
    return TYPE_ALIASES.get(key, OTHER)


def parse_time(value: object, *, unit: str = "h") -> float:
    """Read a time (``6``, ``"24h"``, ``"2 days"``) in hours; missing values give NaN."""
    text = str(value).strip()
    if text == "" or text.lower() in {"nan", "none", "<na>"}:
        return float("nan")
    match = _TIME_VALUE.match(text)
    suffix = (match.group(2) if match else "").lower() or unit.lower()
    if match is None or suffix not in HOURS_PER_UNIT:
        raise ValueError(f"cannot read time {text!r}: expected hours or a number with h/d/min")
    return float(match.group(1)) * HOURS_PER_UNIT[suffix]


def hours_column(obs: pd.DataFrame, time_key: str) -> np.ndarray:
    """The times of ``obs[time_key]`` in hours, as float64."""
    try:
        # A unit in the column's name (time_min, time_days) applies to bare numbers.
        suffix = re.search(r"_([a-z]+)$", time_key.lower())
        unit = suffix.group(1) if suffix and suffix.group(1) in HOURS_PER_UNIT else "h"
        times = {v: parse_time(v, unit=unit) for v in obs[time_key].astype(str).unique()}
    except ValueError as err:
        raise ValidationError(
            [
                Problem(
                    code="bad_time",
                    what=str(err),
                    where=f"obs[{time_key!r}]",
                    fix="give times in hours (6, '24h', '2d'), or pass time_key= naming the "
                    "right column",
                )
            ]
        ) from None
    return obs[time_key].astype(str).map(times).to_numpy(np.float64)
