"""Doses: the canonical dose string (micromolar, one number per sorted component).

``obs['dose']`` holds one number per component of ``obs['perturbation']``, in the same sorted order,
joined by ``+`` (``"0.1+10"``); a component without a dose is an empty field (``"0.1+"``), and
control cells (no components) have ``""``. Units are converted to :data:`~celltwin._keys.DOSE_UNIT`
once, on the way in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .._keys import COMBO_SEP, DOSE_UNIT

#: Factor that converts a dose in each unit to micromolar (keys are lower-case, spaces removed).
UNIT_TO_MICROMOLAR: dict[str, float] = {
    "pm": 1e-6,
    "picomolar": 1e-6,
    "nm": 1e-3,
    "nanomolar": 1e-3,
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,  # Greek mu, as opposed to the micro sign above
    "micromolar": 1.0,
    "mm": 1e3,
    "millimolar": 1e3,
    "m": 1e6,
    "molar": 1e6,
}

_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµμ]*)\s*$")


def unit_factor(unit: str) -> float:
    """Return the factor converting a dose in ``unit`` to micromolar.

    Raises
    ------
    ValueError
        When the unit is unknown; the message lists the known units.
    """
    key = unit.strip().lower().replace(" ", "")
    if key not in UNIT_TO_MICROMOLAR:
        known = ", ".join(sorted({"pM", "nM", "uM", "µM", "mM", "M"}))
        raise ValueError(f"unknown dose unit {unit!r}: use one of {known}")
    return UNIT_TO_MICROMOLAR[key]


def parse_dose_value(text: str, *, unit: str = DOSE_UNIT) -> float | None:
    """Parse one source dose such as ``"10"``, ``"10 nM"`` or ``"0.5uM"`` into micromolar.

    ``unit`` applies when the text carries none. Empty text, ``nan`` and ``None`` give ``None``.
    """
    text = str(text).strip()
    if text == "" or text.lower() in {"nan", "none", "na", "<na>"}:
        return None
    match = _NUMBER_UNIT.match(text)
    if match is None:
        raise ValueError(f"cannot read dose {text!r}: expected a number with an optional unit")
    value = float(match.group(1))
    factor = unit_factor(match.group(2) or unit)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"dose must be a finite number >= 0 (got {text!r})")
    return value * factor


def _format_number(value: float) -> str:
    # repr() is the shortest text that reads back to the same float, so parse(format(x)) == x.
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def format_dose(values: Sequence[float | None], *, unit: str = DOSE_UNIT) -> str:
    """Format doses as the canonical dose string (micromolar, ``+``-joined).

    Parameters
    ----------
    values
        One dose per component of the perturbation, in the components' sorted order; ``None`` for a
        component without a dose.
    unit
        Unit of ``values``; they are converted to micromolar.

    Returns
    -------
    str
        ``"0.1+10"`` for two doses, ``"0.1+"`` when the second component has none, ``""`` when no
        component has a dose.

    Examples
    --------
    >>> format_dose([100.0, None], unit="nM")
    '0.1+'
    >>> parse_dose(format_dose([0.1, 10.0]))
    [0.1, 10.0]
    """
    factor = unit_factor(unit)
    if all(v is None for v in values):
        return ""
    parts = []
    for v in values:
        if v is None:
            parts.append("")
            continue
        v = float(v)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"dose must be a finite number >= 0 (got {v!r})")
        parts.append(_format_number(v * factor))
    return COMBO_SEP.join(parts)


def parse_dose(dose: str, *, n_components: int | None = None) -> list[float | None]:
    """Parse a canonical dose string into micromolar values, one per component.

    Parameters
    ----------
    dose
        A value of ``obs['dose']`` such as ``"0.1+10"``.
    n_components
        Number of components of the matching perturbation. An empty string means "no dose for any
        component", which is ``[None] * n_components`` (``[]`` when not given).

    Examples
    --------
    >>> parse_dose("0.1+")
    [0.1, None]
    >>> parse_dose("", n_components=2)
    [None, None]
    """
    dose = str(dose).strip()
    if dose == "":
        return [None] * (n_components or 0)
    values: list[float | None] = []
    for part in dose.split(COMBO_SEP):
        if part.strip() == "":
            values.append(None)
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(
                f"cannot read canonical dose {dose!r}: each '+'-separated part must be a number "
                f"in {DOSE_UNIT} (use format_dose to build it)"
            ) from None
    if n_components is not None and len(values) != n_components:
        raise ValueError(
            f"dose {dose!r} has {len(values)} parts but the perturbation has {n_components} "
            "components: give one dose per component, in sorted component order"
        )
    return values
