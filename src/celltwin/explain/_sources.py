"""What a prediction leaned on: the training conditions and contexts behind it (issue 19, point 4)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from anndata import AnnData

from .._keys import SOURCE_COLUMNS, SPLIT, TEST
from ..io import read
from ..models import MODELS, Model, conditions_of, load


def explainable_models() -> list[str]:
    """Registered models that can say what their predictions borrowed from."""
    return sorted(name for name, spec in MODELS.items() if hasattr(spec.cls, "sources"))


def sources(
    model: Model | str | os.PathLike[str],
    adata: AnnData | str | os.PathLike[str] | None = None,
    *,
    conditions: pd.DataFrame | Sequence[Sequence[str]] | None = None,
    top: int | None = 5,
) -> pd.DataFrame:
    """For each predicted condition, the training conditions and contexts it borrowed from.

    The model says it through its ``sources`` method (:func:`explainable_models` lists the
    models that have one): for ``transition`` (:meth:`celltwin.models.TransitionModel.sources`)
    the measured condition itself, the other contexts' effects weighted by cell states or
    the context kernel, the other doses, a combination's parts, or the training perturbations
    with the nearest prior features; for ``nearest_perturbation`` its neighbour; for
    ``context_shift`` the other contexts with equal weights.

    Parameters
    ----------
    model
        A fitted model, or the folder it was saved to.
    adata
        Cells holding the control cells of the asked contexts (as for ``predict``), or the
        path of an ``.h5ad`` file (read with :func:`celltwin.io.read`); needed for
        contexts the model was not trained on, and to list the conditions when ``conditions``
        is ``None``.
    conditions
        What to explain, as for ``predict``. ``None``: the conditions of ``adata``'s held-out
        cells (``obs['split'] == 'test'``), or all its perturbed conditions without a split.
    top
        Sources kept per condition, heaviest first; ``None`` keeps all (mixture weights then
        sum to 1 per condition).

    Returns
    -------
    pandas.DataFrame
        Columns ``condition`` (``context:perturbation[:dose]``), ``context`` (the source's),
        ``kind``, ``source`` (``perturbation[@dose]``) and ``weight``. :func:`describe_sources`
        says it in words.
    """
    fitted = model if isinstance(model, Model) else load(model)
    cells = adata if adata is None or isinstance(adata, AnnData) else read(Path(adata))
    if not hasattr(fitted, "sources"):
        raise ValueError(
            f"model {fitted.name!r} cannot say what its predictions borrowed from. Fix: use one "
            f"of {explainable_models()}."
        )
    if conditions is None:
        if cells is None:
            raise ValueError(
                "sources needs the conditions to explain: pass conditions=..., or adata whose "
                "held-out cells (obs['split'] == 'test') name them."
            )
        split = TEST if SPLIT in cells.obs.columns else None
        conditions = conditions_of(cells, split=split)
    table: pd.DataFrame = fitted.sources(cells, conditions=conditions, top=top)
    return table


def describe_sources(table: pd.DataFrame) -> pd.Series:
    """One sentence per condition naming its heaviest source, from :func:`sources`' table.

    E.g. ``"CD14_Mono:stimulated: predicted mostly from stimulated's effect in CD16_Mono
    (cell states, weight 0.62)"``. Indexed by condition, in the table's order.
    """
    missing = [c for c in SOURCE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; pass the table sources() returns")
    out = {}
    for condition, rows in table.groupby("condition", sort=False):
        best = rows.loc[rows["weight"].idxmax()]
        kind, src, ctx, w = best["kind"], best["source"], best["context"], best["weight"]
        if kind == "measured":
            text = "measured in training (its own effect)"
        elif kind == "features":
            text = f"nearest in prior features to {src}, measured in {ctx} (similarity {w:.2f})"
        else:
            text = f"predicted mostly from {src}'s effect in {ctx} ({kind}, weight {w:.2f})"
        out[str(condition)] = f"{condition}: {text}"
    return pd.Series(out, name="explanation", dtype=object)
