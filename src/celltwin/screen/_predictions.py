"""Effects of one batch of candidates: predicted by the model (refusals kept aside) or measured.

A model refuses what it cannot predict with :class:`~celltwin.models.UnpredictableConditionsError`
(every refused condition named, with its reason) or, for the baselines, one
:class:`~celltwin.models.UnseenConditionError`. A screen goes on without them: named refusals
are set aside at once; an error that names none is narrowed down by halving the batch, so a
batch of ``n`` with ``k`` unnamed refusals costs about ``k log2 n`` extra calls.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, DOSE, IN_DOMAIN, PERTURBATION, PREDICTION_SOURCE
from ..models import UnpredictableConditionsError, UnseenConditionError, predict_effects

#: The prediction source of a measured candidate.
MEASURED = "measured"


@dataclass(frozen=True)
class BatchEffects:
    """Effects of the answered rows of a batch (rows of ``effects`` follow ``rows``)."""

    rows: list[int]
    effects: np.ndarray  # answered x genes, float64
    lower: np.ndarray
    upper: np.ndarray
    in_domain: np.ndarray
    source: list[str]
    interval: float | None  # nominal coverage of the model's intervals, when it says
    refused: dict[int, str]


def predicted(
    model: Any,
    adata: AnnData | None,
    table: pd.DataFrame,
    *,
    context: str,
    genes: Sequence[str],
    seed: int,
    n_cells: int,
) -> BatchEffects:
    """Predicted effects of the rows of ``table`` (perturbation, dose) in ``context``, on
    ``genes``; rows the model refuses are left out and listed with their reason."""
    conditions = pd.DataFrame(
        {
            CONTEXT: context,
            PERTURBATION: table[PERTURBATION].astype(str).to_numpy(),
            DOSE: table[DOSE].astype(str).to_numpy(),
        }
    )
    refused: dict[int, str] = {}
    parts = _answer(model, adata, conditions, list(range(len(table))), seed, n_cells, refused)
    rows = [i for r, _ in parts for i in r]
    tables = [t for _, t in parts]
    if not tables:
        empty = np.zeros((0, len(genes)))
        return BatchEffects([], empty, empty, empty.copy(), np.zeros(0), [], None, refused)
    cols = pd.Index(tables[0].var_names).get_indexer(pd.Index(genes))

    def stack(get: Any) -> np.ndarray:
        return np.vstack([np.asarray(get(t), dtype=np.float64)[:, cols] for t in tables])

    interval = tables[0].uns.get("interval")
    return BatchEffects(
        rows=rows,
        effects=stack(lambda t: t.X),
        lower=stack(lambda t: t.layers["lower"]),
        upper=stack(lambda t: t.layers["upper"]),
        in_domain=np.concatenate(
            [pd.to_numeric(t.obs[IN_DOMAIN], errors="coerce").to_numpy(float) for t in tables]
        ),
        source=[str(s) for t in tables for s in t.obs[PREDICTION_SOURCE]],
        interval=None if interval is None else float(interval),
        refused=refused,
    )


def measured(profiles: AnnData, labels: Sequence[str], genes: Sequence[str]) -> BatchEffects:
    """Measured profiles of ``labels`` on ``genes`` (no intervals; in domain by definition)."""
    sub = profiles[list(labels), list(genes)]
    x = np.asarray(sub.X, dtype=np.float64)
    nan = np.full(x.shape, np.nan)
    n = len(labels)
    return BatchEffects(list(range(n)), x, nan, nan.copy(), np.ones(n), [MEASURED] * n, None, {})


def _answer(
    model: Any,
    adata: AnnData | None,
    conditions: pd.DataFrame,
    rows: list[int],
    seed: int,
    n_cells: int,
    refused: dict[int, str],
) -> list[tuple[list[int], AnnData]]:
    """Effects of ``rows`` as (rows, table) parts; refused rows go to ``refused``."""
    if not rows:
        return []
    try:
        return [(rows, _effects(model, adata, conditions.iloc[rows], seed, n_cells))]
    except UnpredictableConditionsError as err:
        named = _named(err.refusals, conditions, rows)
        if named:
            refused.update(named)
            rest = [i for i in rows if i not in named]
            return _answer(model, adata, conditions, rest, seed, n_cells, refused)
        if len(rows) == 1:
            refused[rows[0]] = str(err)
            return []
    except UnseenConditionError as err:
        if len(rows) == 1:
            refused[rows[0]] = str(err)
            return []
    half = len(rows) // 2
    return _answer(model, adata, conditions, rows[:half], seed, n_cells, refused) + _answer(
        model, adata, conditions, rows[half:], seed, n_cells, refused
    )


def _named(refusals: Any, conditions: pd.DataFrame, rows: list[int]) -> dict[int, str]:
    """Rows of ``conditions`` named in a refusals table, with their reason (and suggestion)."""
    if not isinstance(refusals, pd.DataFrame) or len(refusals) == 0:
        return {}
    reasons: dict[tuple[str, str], str] = {}
    for r in refusals.astype(str).to_dict("records"):
        hint = r.get("suggestion", "")
        text = r.get("reason", "") + (f" ({hint})" if hint and hint != "nan" else "")
        reasons[(r.get(PERTURBATION, ""), r.get(DOSE, ""))] = text
    out = {}
    for i in rows:
        key = (str(conditions[PERTURBATION].iloc[i]), str(conditions[DOSE].iloc[i]))
        if key in reasons:
            out[i] = reasons[key]
    return out


def _effects(
    model: Any, adata: AnnData | None, conditions: pd.DataFrame, seed: int, n_cells: int
) -> AnnData:
    """``models.predict_effects``, or the model's own method with ``n_cells`` when it takes
    that (a faster batched path), completed to the same columns."""
    conditions = conditions.reset_index(drop=True)
    own = getattr(model, "predict_effects", None)
    if callable(own) and "n_cells" in inspect.signature(own).parameters:
        out = own(adata, conditions=conditions, seed=seed, n_cells=n_cells)
    else:
        out = predict_effects(model, adata, conditions=conditions, seed=seed)
    for layer in ("lower", "upper"):
        if layer not in out.layers:
            out.layers[layer] = np.full(out.shape, np.nan, dtype=np.float32)
    if IN_DOMAIN not in out.obs:
        out.obs[IN_DOMAIN] = np.nan
    if PREDICTION_SOURCE not in out.obs:
        out.obs[PREDICTION_SOURCE] = ""
    if out.n_obs != len(conditions):
        raise RuntimeError(
            f"{getattr(model, 'name', model)} returned {out.n_obs} effects for "
            f"{len(conditions)} conditions"
        )
    return out
