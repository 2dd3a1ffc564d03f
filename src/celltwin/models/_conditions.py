"""Conditions: which (context, perturbation, dose) a model is asked for, as a canonical table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    SPLIT,
    split_combination,
)
from ._checks import (
    _check_doses,
    _check_labels,
    _clean_obs,
    _dose_strings,
    _mode,
    _positive_int,
    _require_obs,
)

#: Optional column of a conditions table: how many cells to generate for that condition.
N_CELLS: Final = "n_cells"

#: A condition's key: ``(context, perturbation, dose)``, dose ``""`` when undosed.
ConditionKey = tuple[str, str, str]


def conditions_of(adata: AnnData, *, split: str | None = None) -> pd.DataFrame:
    """Return the distinct perturbed conditions of ``adata``, ready for :meth:`Model.predict`.

    Parameters
    ----------
    adata
        Canonical cells x genes.
    split
        When given, only cells with ``obs['split'] == split`` are counted (e.g. ``"test"``).

    Returns
    -------
    pandas.DataFrame
        One row per (context, perturbation, dose) of the non-control cells, sorted, with columns
        ``context``, ``perturbation``, ``dose`` (``""`` when obs has none), ``perturbation_type``
        and ``n_cells`` (how many cells the condition has, so predictions can match it).

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> obs = pd.DataFrame({"context": ["K562"] * 3, "perturbation": ["control", "KLF1", "KLF1"],
    ...                     "perturbation_type": ["control", "crispri", "crispri"]},
    ...                    index=["a", "b", "c"])
    >>> conditions_of(ad.AnnData(np.zeros((3, 2)), obs=obs))[["perturbation", "n_cells"]].values.tolist()
    [['KLF1', 2]]
    """
    _require_obs(adata.obs, (PERTURBATION, CONTEXT), role="conditions_of")
    obs = adata.obs
    if split is not None:
        if SPLIT not in obs.columns:
            raise KeyError(
                f"obs has no column {SPLIT!r} to select split={split!r}. "
                "Fix: assign a split first (celltwin.split) or pass split=None."
            )
        obs = obs.loc[obs[SPLIT].astype(str).to_numpy() == split]
    clean = _clean_obs(obs)
    clean = clean.loc[clean[PERTURBATION].to_numpy() != CONTROL]
    keys = [CONTEXT, PERTURBATION, DOSE]
    grouped = clean.groupby(keys, sort=True)
    table = grouped.size().rename(N_CELLS).reset_index()
    types = grouped[PERTURBATION_TYPE].agg(_mode).reset_index(drop=True)
    table.insert(3, PERTURBATION_TYPE, types.to_numpy())
    table[N_CELLS] = table[N_CELLS].astype(np.int64)
    return table


def as_conditions(conditions: pd.DataFrame | Sequence[Sequence[str]]) -> pd.DataFrame:
    """Normalise a conditions argument into the canonical table predict works from.

    Accepts a DataFrame with columns ``context`` and ``perturbation`` (optionally ``dose``,
    ``perturbation_type``, ``n_cells``) or a sequence of ``(context, perturbation)`` or
    ``(context, perturbation, dose)`` tuples. Returns a new DataFrame with a ``RangeIndex`` and
    at least the columns ``context``, ``perturbation`` and ``dose``.
    """
    if isinstance(conditions, pd.DataFrame):
        missing = [c for c in (CONTEXT, PERTURBATION) if c not in conditions.columns]
        if missing:
            raise KeyError(
                f"conditions has no column {missing[0]!r} (columns: {list(conditions.columns)}). "
                f"Fix: pass a DataFrame with columns {CONTEXT!r}, {PERTURBATION!r}[, {DOSE!r}], "
                "e.g. celltwin.models.conditions_of(test_cells)."
            )
        table = pd.DataFrame(
            {
                CONTEXT: conditions[CONTEXT].astype(str).to_numpy(dtype=object),
                PERTURBATION: conditions[PERTURBATION].astype(str).to_numpy(dtype=object),
                DOSE: _dose_strings(conditions[DOSE])
                if DOSE in conditions.columns
                else np.full(len(conditions), "", dtype=object),
            }
        )
        if PERTURBATION_TYPE in conditions.columns:
            table[PERTURBATION_TYPE] = conditions[PERTURBATION_TYPE].astype(str).to_numpy()
        if N_CELLS in conditions.columns:
            table[N_CELLS] = [
                _positive_int(v, key=f"conditions[{N_CELLS!r}]") for v in conditions[N_CELLS]
            ]
    elif isinstance(conditions, str) or not isinstance(conditions, Sequence):
        raise TypeError(
            "'conditions' must be a DataFrame or a list of (context, perturbation[, dose]) tuples "
            f"(got {type(conditions).__name__}). Fix: conditions=[('K562', 'KLF1')]."
        )
    else:
        rows = []
        for row in conditions:
            if isinstance(row, str) or len(row) not in (2, 3):
                raise ValueError(
                    f"each condition must be (context, perturbation) or (context, perturbation, "
                    f"dose) (got {row!r})."
                )
            rows.append((str(row[0]), str(row[1]), str(row[2]) if len(row) == 3 else ""))
        table = pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION, DOSE], dtype=object)
    if len(table) == 0:
        raise ValueError("'conditions' is empty. Fix: list at least one condition to predict.")
    _check_labels(table[PERTURBATION], where="conditions")
    _check_doses(table, where="conditions")
    return table.reset_index(drop=True)


def dose_components(perturbation: str, dose: str) -> list[str]:
    """Split a dose string into one (possibly empty) dose per component of ``perturbation``."""
    n = len(split_combination(perturbation))
    return dose.split(COMBO_SEP) if dose else [""] * n


def condition_label(key: ConditionKey) -> str:
    """A condition as words, for messages: ``'KLF1' in context 'K562' at dose '0.1'``."""
    context, perturbation, dose = key
    return f"{perturbation!r} in context {context!r}" + (f" at dose {dose!r}" if dose else "")


def condition_keys(table: pd.DataFrame) -> list[ConditionKey]:
    """(context, perturbation, dose) per row of a conditions table."""
    return list(
        zip(
            table[CONTEXT].astype(str),
            table[PERTURBATION].astype(str),
            table[DOSE].astype(str),
            strict=True,
        )
    )
