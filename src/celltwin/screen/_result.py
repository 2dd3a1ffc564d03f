"""What a screen returns, :class:`ScreenResult`, and how it is written and read back."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anndata
import numpy as np
import pandas as pd
from anndata import AnnData

from .._output import check_output
from ._objective import Objective

__all__ = ["RESULT_COLUMNS", "ScreenResult", "read_screen"]

#: Columns of :attr:`ScreenResult.table`, in order.
RESULT_COLUMNS: Final = (
    "rank",
    "label",
    "perturbation",
    "dose",
    "kind",
    "score",
    "lower",
    "upper",
    "pvalue",
    "fdr",
    "in_domain",
    "prediction_source",
    "top_genes",
)
#: Columns of :attr:`ScreenResult.refused`.
REFUSED_COLUMNS: Final = ("label", "perturbation", "dose", "reason")
FILES: Final = {
    "table": "screen.parquet",
    "csv": "screen.csv",
    "effects": "effects.h5ad",
    "cells": "cells.h5ad",
    "meta": "meta.json",
    "refused": "refused.csv",
}


@dataclass(frozen=True)
class ScreenResult:
    """A ranked screen: every scored candidate, the top hits' effects and predicted cells.

    Attributes
    ----------
    table
        One row per scored candidate, best first: ``rank`` (1 = best), ``label``,
        ``perturbation``, ``dose``, ``kind`` (``predicted``/``measured``), ``score`` (the
        objective's), ``lower``/``upper`` (the score's interval propagated from the model's
        effect intervals, NaN without), ``pvalue`` and ``fdr`` (Benjamini-Hochberg over the
        screen; NaN when the objective has no null), ``in_domain`` (the model's in-domain
        score; 1 for measured profiles; NaN when the model has none), ``prediction_source``
        (``measured``, ``transferred``, ``composed``, ``prior``, ``features``; ``""`` when the
        model does not say) and ``top_genes`` (the 10 genes of largest ``|effect|``,
        ``;``-joined).
    effects
        The top hits' effects (rows in rank order, ``obs_names`` = labels, obs = their table
        rows), layers ``lower``/``upper`` (the effect intervals, NaN without).
    cells
        The predicted cells of the top predicted hits (obs ``label``), or ``None``.
    objective
        What the screen ranked by (read back from disk: its name, direction, null and
        description only; it cannot score).
    context
        The context screened.
    meta
        ``complete`` (``False`` when a time budget stopped it), counts, genes, settings.
    refused
        The candidates the model refused: ``label``, ``perturbation``, ``dose``, ``reason``.
    """

    table: pd.DataFrame
    effects: AnnData
    cells: AnnData | None
    objective: Objective
    context: str
    meta: dict[str, Any]
    refused: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(REFUSED_COLUMNS))
    )

    def __repr__(self) -> str:
        state = "complete" if self.meta.get("complete", True) else "partial"
        return (
            f"ScreenResult({len(self.table)} scored, {len(self.refused)} refused, {state}; "
            f"objective {self.objective.name!r}, context {self.context!r})"
        )

    def top(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` best rows of :attr:`table`."""
        return self.table.head(n)

    def write(self, directory: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the screen to ``directory``: ``screen.parquet``, ``screen.csv``,
        ``effects.h5ad``, ``cells.h5ad`` (when there are cells), ``meta.json`` and
        ``refused.csv``. An existing non-empty folder is refused unless ``force``."""
        out = check_output(directory, overwrite=force, kind="folder", what="screen folder")
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_parquet(out / FILES["table"], index=False)
        self.table.to_csv(out / FILES["csv"], index=False)
        self.effects.write_h5ad(out / FILES["effects"])
        if self.cells is not None:
            self.cells.write_h5ad(out / FILES["cells"])
        else:
            (out / FILES["cells"]).unlink(missing_ok=True)
        self.refused.to_csv(out / FILES["refused"], index=False)
        meta = {**self.meta, "context": self.context, "objective": describe(self.objective)}
        (out / FILES["meta"]).write_text(json.dumps(_jsonable(meta), indent=2) + "\n")
        return out


def describe(objective: Any) -> dict[str, Any]:
    """An objective's name, direction, null, description and parameters, JSON-ready."""
    params = getattr(objective, "params", {}) or {}
    return {
        "name": str(objective.name),
        "direction": str(objective.direction),
        "null": str(getattr(objective, "null", "")),
        "description": str(getattr(objective, "description", "")),
        "params": {str(k): _param(v) for k, v in dict(params).items()},
    }


def _param(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Sequence) and len(value) <= 50:
        return [_param(v) for v in value]
    return f"<{type(value).__name__}>"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _read_only(*_: Any) -> np.ndarray:
    raise RuntimeError(
        "this objective was read from a screen folder and cannot score. Fix: build it again "
        "(celltwin.screen.get_objective(name, ...)) to screen."
    )


def read_screen(directory: str | os.PathLike[str]) -> ScreenResult:
    """Read a screen written by :meth:`ScreenResult.write`.

    The objective comes back as its description (name, direction, null); it cannot score.
    """
    path = Path(directory)
    absent = [FILES[k] for k in ("table", "effects", "meta") if not (path / FILES[k]).is_file()]
    if absent:
        raise FileNotFoundError(
            f"{str(path)!r} is not a screen folder: {absent} missing. Fix: the --out folder of "
            "celltwin screen (or ScreenResult.write)."
        )
    meta = json.loads((path / FILES["meta"]).read_text())
    spec = meta.pop("objective")
    context = str(meta.pop("context"))
    objective = Objective(
        name=spec["name"],
        direction=spec["direction"],
        null=spec["null"],
        description=spec["description"],
        scorer=_read_only,
        params=spec.get("params", {}),
    )
    cells_file = path / FILES["cells"]
    refused_file = path / FILES["refused"]
    refused = (
        pd.read_csv(refused_file, dtype=str, keep_default_na=False)
        if refused_file.is_file()
        else pd.DataFrame(columns=list(REFUSED_COLUMNS))
    )
    return ScreenResult(
        table=pd.read_parquet(path / FILES["table"]),
        effects=anndata.read_h5ad(path / FILES["effects"]),
        cells=anndata.read_h5ad(cells_file) if cells_file.is_file() else None,
        objective=objective,
        context=context,
        meta=meta,
        refused=refused,
    )
