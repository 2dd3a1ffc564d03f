"""Writing canonical data back in a convention's layout: where each canonical column goes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    BATCH,
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    DOSE,
    DOSE_UNIT,
    PERTURBATION,
    PERTURBATION_TYPE,
    TIME,
    UNS_KEY,
    split_label,
)
from ._dose import parse_dose


def gears_label(perturbation: str) -> str:
    parts = [p for p in split_label(perturbation) if p and p != CONTROL]
    if not parts:
        return "ctrl"
    return COMBO_SEP.join(parts) if len(parts) > 1 else f"{parts[0]}{COMBO_SEP}ctrl"


def relabel_control(label: str) -> Callable[[str], str]:
    return lambda perturbation: label if perturbation == CONTROL else perturbation


@dataclass(frozen=True)
class Layout:
    """Where a convention keeps each canonical column, for writing canonical data in its layout.

    The canonical columns (except ``perturbation_type``, which every reader understands) are
    replaced by the layout's columns; the source columns that ``read`` recorded are dropped too so
    that the written file is read back unambiguously. Other obs columns are kept.
    """

    perturbation_key: str
    format_label: Callable[[str], str]
    context_key: str
    batch_key: str | None = BATCH
    #: ``(value column, unit column)``; doses are written in micromolar.
    dose_keys: tuple[str, str] | None = None
    time_key: str | None = None
    #: var column that gets the gene symbols.
    gene_symbol_key: str | None = None

    def write(self, adata: AnnData) -> AnnData:
        """Return a copy of canonical ``adata`` with obs (and var) in this layout."""
        out = adata.copy()
        obs = out.obs
        record = dict(out.uns.get(UNS_KEY, {}).get("convention", {}))
        source_keys = [
            str(v) for k, v in record.items() if k.endswith("_key") and k != "gene_symbol_key"
        ]
        drop = {PERTURBATION, CONTEXT, BATCH, DOSE, TIME, *source_keys} - {PERTURBATION_TYPE}
        new = obs.drop(columns=[c for c in obs.columns if c in drop])
        perturbation = obs[PERTURBATION].astype(str)
        labels = {p: self.format_label(p) for p in perturbation.unique()}
        new[self.perturbation_key] = pd.Categorical(perturbation.map(labels))
        new[self.context_key] = obs[CONTEXT].to_numpy()
        if self.batch_key is not None and BATCH in obs.columns:
            new[self.batch_key] = obs[BATCH].to_numpy()
        if self.dose_keys is not None and DOSE in obs.columns:
            value_key, unit_key = self.dose_keys
            values, dosed = _dose_values(perturbation, obs[DOSE].astype(str))
            new[value_key] = values
            new[unit_key] = pd.Categorical(np.where(dosed, DOSE_UNIT, np.array(None)))
        if self.time_key is not None and TIME in obs.columns:
            new[self.time_key] = obs[TIME].to_numpy()
        out.obs = new
        if self.gene_symbol_key is not None:
            out.var[self.gene_symbol_key] = np.asarray(out.var_names, dtype=object)
        if UNS_KEY in out.uns:
            # The file is no longer in canonical form; what it was read from no longer applies.
            out.uns[UNS_KEY] = {k: v for k, v in out.uns[UNS_KEY].items() if k != "convention"}
        return out


def _dose_values(perturbation: pd.Series, dose: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Source-style dose values: numbers for single doses, ``+``-joined text for combinations.

    Returns the values and whether each cell has a dose.
    """
    codes, uniques = pd.MultiIndex.from_arrays([perturbation, dose]).factorize()
    parsed = [
        parse_dose(d, n_components=0 if p == CONTROL else len(split_label(p))) for p, d in uniques
    ]
    dosed = np.array([any(v is not None for v in doses) for doses in parsed], dtype=bool)
    if any(sum(v is not None for v in doses) > 1 for doses in parsed):
        text = np.array([d if has else "" for (_, d), has in zip(uniques, dosed, strict=True)])
        return text.astype(object)[codes], dosed[codes]
    numbers = [next((v for v in doses if v is not None), np.nan) for doses in parsed]
    return np.asarray(numbers, dtype=np.float64)[codes], dosed[codes]


def copy_adata(adata: AnnData) -> AnnData:
    return adata.copy()
