"""The table of what each prediction borrowed from, shared by the models that can say it.

A model with a public ``sources(adata=None, *, conditions, top=None)`` method returns one row
per (asked condition, source) with the columns of :data:`celltwin._keys.SOURCE_COLUMNS`;
:func:`celltwin.explain.sources` calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd

from .._keys import SOURCE_COLUMNS
from ._conditions import ConditionKey


class Source(NamedTuple):
    """One thing a prediction borrowed from: a training condition and its weight."""

    kind: str
    context: str
    perturbation: str
    dose: str
    weight: float


def condition_text(key: ConditionKey) -> str:
    """``context:perturbation[:dose]``, the form ``celltwin predict --conditions`` takes."""
    context, perturbation, dose = key
    return f"{context}:{perturbation}" + (f":{dose}" if dose else "")


def source_table(
    keys: Sequence[ConditionKey], found: Sequence[Sequence[Source]], *, top: int | None
) -> pd.DataFrame:
    """The sources of each condition as one table, heaviest first, ``top`` per condition.

    Ties keep the order the model gave them in. ``top=None`` keeps every source.
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"'top' must be a positive integer or None (got {top!r})")
    rows = []
    for key, sources in zip(keys, found, strict=True):
        order = sorted(range(len(sources)), key=lambda i: -sources[i].weight)
        for i in order[:top]:
            s = sources[i]
            label = s.perturbation + (f"@{s.dose}" if s.dose else "")
            rows.append((condition_text(key), s.context, s.kind, label, float(s.weight)))
    return pd.DataFrame(rows, columns=list(SOURCE_COLUMNS))
