"""The outputs of a screen from its scored rows: the ranked table, the top hits' effects and
their predicted cells."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, DOSE, PERTURBATION
from ..eval import benjamini_hochberg
from ..models import CellModel
from ._checkpoint import Top
from ._result import REFUSED_COLUMNS, RESULT_COLUMNS
from ._scoring import best_first

#: Columns of the per-batch rows: the result's columns before ranking, plus bookkeeping.
ROW_COLUMNS = [c for c in RESULT_COLUMNS if c not in ("rank", "fdr")] + ["order", "reason"]


def empty_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=ROW_COLUMNS)


def rank(rows: pd.DataFrame, direction: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ranked table (FDR over every p-value of the screen) and the refused rows."""
    refused_mask = rows["reason"].astype(str) != ""
    refused = rows.loc[refused_mask, list(REFUSED_COLUMNS)].astype(str).reset_index(drop=True)
    scored = rows.loc[~refused_mask].sort_values("order", kind="stable").reset_index(drop=True)
    for col in ("score", "lower", "upper", "pvalue", "in_domain"):
        scored[col] = pd.to_numeric(scored[col], errors="coerce").astype(float)
    fdr = np.full(len(scored), np.nan)
    p = scored["pvalue"].to_numpy(float)
    has = np.isfinite(p)
    if has.any():
        fdr[has] = benjamini_hochberg(p[has])
    scored["fdr"] = fdr
    ranked = scored.iloc[best_first(scored["score"].to_numpy(float), direction)]
    ranked = ranked.reset_index(drop=True)
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    for col in ("label", PERTURBATION, DOSE, "kind", "prediction_source", "top_genes"):
        ranked[col] = ranked[col].astype(str)
    return ranked[list(RESULT_COLUMNS)], refused


def top_effects(ranked: pd.DataFrame, best: Top, genes: list[str], top: int) -> AnnData:
    """The top rows' effects (rank order), layers ``lower``/``upper``, obs their table rows."""
    rows = ranked.head(top)
    at = {label: i for i, label in enumerate(best.labels)}
    idx = [at[label] for label in rows["label"]]
    obs = rows.set_index(pd.Index(rows["label"].to_numpy(), dtype=str)).copy()
    obs.index.name = None
    return AnnData(
        X=np.asarray(best.effects[idx], dtype=np.float32).reshape(len(idx), len(genes)),
        obs=obs,
        var=pd.DataFrame(index=pd.Index(genes, dtype=str)),
        layers={
            "lower": np.asarray(best.lower[idx], dtype=np.float32).reshape(len(idx), len(genes)),
            "upper": np.asarray(best.upper[idx], dtype=np.float32).reshape(len(idx), len(genes)),
        },
    )


def top_cells(
    model: Any,
    adata: AnnData | None,
    ranked: pd.DataFrame,
    *,
    context: str,
    top: int,
    n_cells: int,
    seed: int,
) -> AnnData | None:
    """Predicted cells of the top predicted hits (``model.predict``, one call), or ``None``
    for models without cells, without ``adata`` or without predicted hits."""
    hits = ranked.head(top)
    hits = hits[hits["kind"] == "predicted"]
    if len(hits) == 0 or adata is None or not isinstance(model, CellModel):
        return None
    conditions = pd.DataFrame(
        {
            CONTEXT: context,
            PERTURBATION: hits[PERTURBATION].to_numpy(),
            DOSE: hits[DOSE].to_numpy(),
        }
    )
    cells = model.predict(adata, conditions=conditions, n_cells=n_cells, seed=seed)
    keys = hits[PERTURBATION].astype(str) + "|" + hits[DOSE].astype(str)
    label_of = dict(zip(keys, hits["label"], strict=True))
    dose = (
        cells.obs[DOSE].astype(str) if DOSE in cells.obs else pd.Series("", index=cells.obs.index)
    )
    cells.obs["label"] = [
        label_of.get(f"{p}|{d}", "")
        for p, d in zip(cells.obs[PERTURBATION].astype(str), dose, strict=True)
    ]
    return cells
