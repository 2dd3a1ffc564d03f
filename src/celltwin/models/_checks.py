"""Validation of the data models read: obs columns, labels, doses, genes and log space.

Every check names the key, the value and the fix; none changes the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    DOSE,
    GENETIC_TYPES,
    PERTURBATION,
    PERTURBATION_TYPE,
    join_combination,
    split_combination,
)

#: ``log1p(1e4)`` is about 9.2; values far above that mean ``X`` is not log-normalised.


def _mode(values: pd.Series) -> str:
    return str(values.value_counts().index[0])


def _dose_strings(values: pd.Series) -> np.ndarray:
    text = values.astype(object).where(values.notna(), "")
    return np.array([str(v).strip() for v in text], dtype=object)


def _positive_int(value: Any, *, key: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise ValueError(f"{key} must be a whole number >= 1 (got {value!r}).")
    return int(value)


def _check_labels(labels: pd.Series, *, where: str) -> None:
    for label in pd.unique(labels):
        canonical = join_combination(split_combination(label))
        if label != canonical:
            raise ValueError(
                f"{where}: perturbation {label!r} is not canonical (expected {canonical!r}: "
                f"components sorted and joined by {COMBO_SEP!r}, control as {CONTROL!r}). "
                "Fix: read the data with celltwin.io.read (celltwin prepare), which writes "
                "canonical labels; see 'The data model' in the README."
            )


def _check_doses(table: pd.DataFrame, *, where: str) -> None:
    pairs = table[[PERTURBATION, DOSE]].drop_duplicates()
    for perturbation, dose in pairs.itertuples(index=False):
        if dose == "" or perturbation == CONTROL:
            continue
        n = len(split_combination(perturbation))
        if len(dose.split(COMBO_SEP)) != n:
            raise ValueError(
                f"{where}: dose {dose!r} has {len(dose.split(COMBO_SEP))} parts but perturbation "
                f"{perturbation!r} has {n} components. Fix: one dose per sorted component "
                "(celltwin.io.format_dose)."
            )


def _require_obs(obs: pd.DataFrame, keys: Sequence[str], *, role: str) -> None:
    missing = [k for k in keys if k not in obs.columns]
    if missing:
        raise KeyError(
            f"{role}: obs has no column {missing[0]!r} (obs columns: {list(obs.columns)}). "
            "Fix: bring the data into canonical form first (celltwin.io.read, or celltwin "
            "prepare); see 'The data model' in the README."
        )


def _clean_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """The obs columns the models use, as plain strings; a missing dose column becomes ``""``."""
    clean = pd.DataFrame(
        {
            CONTEXT: obs[CONTEXT].astype(str).to_numpy(dtype=object),
            PERTURBATION: obs[PERTURBATION].astype(str).to_numpy(dtype=object),
            DOSE: _dose_strings(obs[DOSE])
            if DOSE in obs.columns
            else np.full(len(obs), "", dtype=object),
            PERTURBATION_TYPE: obs[PERTURBATION_TYPE].astype(str).to_numpy(dtype=object)
            if PERTURBATION_TYPE in obs.columns
            else np.full(len(obs), "other", dtype=object),
        },
        index=pd.Index([str(i) for i in range(len(obs))]),
    )
    return clean


def _unique_genes(adata: AnnData) -> list[str]:
    names = adata.var_names
    if not names.is_unique:
        dup = names[names.duplicated()][:3].tolist()
        raise ValueError(
            f"var_names must be unique gene symbols (duplicated: {dup}). "
            "Fix: adata.var_names_make_unique() or aggregate duplicated genes."
        )
    return [str(g) for g in names]


def is_genetic(perturbation_types: dict[str, str]) -> bool:
    """True when every training perturbation is a CRISPR knockout/interference/activation."""
    return bool(perturbation_types) and set(perturbation_types.values()) <= set(GENETIC_TYPES)
