"""Predict what can be answered, refuse the rest with reasons (under :func:`celltwin.models.predict`).

A model raises :class:`UnpredictableConditionsError` naming every condition it cannot answer;
here the reasons are completed with what only the data knows (a perturbation that *was*
measured, but in cells of the split's validation or test set, which the model never saw), and
with ``skip_unpredictable`` the other conditions are predicted and the refusals returned as a
table, written beside the output as ``<out stem>.refusals.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import COMBO_SEP, CONTEXT, DOSE, PERTURBATION, TRAIN, UNS_KEY
from ._cell import CellModel
from ._errors import UnpredictableConditionsError


def refusals_path(out: str | os.PathLike[str]) -> Path:
    """Where the refusals table of a prediction written to ``out`` goes (``pred.h5ad`` ->
    ``pred.refusals.csv``)."""
    path = Path(out)
    return path.with_name(f"{path.stem}.refusals.csv")


def predict_answerable(
    model: CellModel,
    data: AnnData,
    table: pd.DataFrame,
    *,
    n_cells: int | None,
    seed: int,
    skip_unpredictable: bool,
    split_key: str,
) -> AnnData:
    """``model.predict`` of ``table``; refused conditions fail the call (all named) or, with
    ``skip_unpredictable``, are left out and listed in ``uns['celltwin']['refusals']``."""
    try:
        pred = model.predict(data, conditions=table, n_cells=n_cells, seed=seed)
        refusals = pd.DataFrame()
    except UnpredictableConditionsError as err:
        refusals = held_out_reasons(err.refusals, data, split_key=split_key)
        if not skip_unpredictable or len(refusals) == len(table):
            everything = len(refusals) == len(table)
            message = refusal_message(model.name, refusals, everything=everything)
            raise UnpredictableConditionsError(message, refusals) from None
        refused = set(zip(refusals[CONTEXT], refusals[PERTURBATION], refusals[DOSE], strict=True))
        keep = [
            (str(c), str(p), str(d)) not in refused
            for c, p, d in zip(table[CONTEXT], table[PERTURBATION], table[DOSE], strict=True)
        ]
        pred = model.predict(
            data, conditions=table.loc[keep].reset_index(drop=True), n_cells=n_cells, seed=seed
        )
    pred.uns.setdefault(UNS_KEY, {})["refusals"] = refusals.astype(str)
    return pred


def held_out_reasons(refusals: pd.DataFrame, data: AnnData, *, split_key: str) -> pd.DataFrame:
    """Replace the reason of each refused perturbation that ``data`` holds in cells outside the
    training split: it was measured, but held out, so the model never saw it."""
    if split_key not in data.obs.columns or len(refusals) == 0:
        return refusals
    labels = data.obs[split_key].astype(str).to_numpy()
    perturbations = data.obs[PERTURBATION].astype(str).to_numpy()
    out = refusals.copy()
    for i, perturbation in enumerate(out[PERTURBATION].astype(str)):
        where = sorted(set(labels[(perturbations == perturbation) & (labels != TRAIN)]))
        parts = perturbation.split(COMBO_SEP)
        if not where and len(parts) > 1:
            where = sorted(set(labels[np.isin(perturbations, parts) & (labels != TRAIN)]))
        if where:
            named = " and ".join(repr(w) for w in where)
            row = out.index[i]
            out.loc[row, "reason"] = (
                f"measured, but held out in the {named} split (obs[{split_key!r}]): the model "
                f"never saw it ({out.loc[row, 'reason']})"
            )
            out.loc[row, "suggestion"] = out.loc[row, "suggestion"] or (
                "fit with its cells in the training split"
            )
    return out


def refusal_message(owner: str, refusals: pd.DataFrame, *, everything: bool = False) -> str:
    """The message of an :class:`UnpredictableConditionsError`: each refused condition with its
    reason and suggestion (one line when there is one), then the fix."""
    lines = [
        f"{row.condition}: {row.reason}" + (f" ({row.suggestion})" if row.suggestion else "")
        for row in refusals.itertuples(index=False)
    ]
    fix = (
        "Fix: as suggested; none of the requested conditions can be predicted."
        if everything
        else "Fix: as suggested, or predict the others and list these "
        "(skip_unpredictable=True, --skip-unpredictable)."
    )
    if len(lines) == 1:
        return f"{owner} cannot predict {lines[0]}. {fix}"
    head = f"{owner} cannot predict {len(lines)} conditions:"
    return "\n  ".join([head, *lines]) + "\n" + fix
