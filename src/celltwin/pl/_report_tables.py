"""The tables a report is drawn from, per model, and the helpers that read them.

See :mod:`celltwin.pl._report` for the tables (``metrics``, ``summary``, ``deltas``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._keys import CONTEXT, PERTURBATION

#: One model's tables: ``metrics``, ``summary`` and optionally ``deltas``.
Tables = Mapping[str, pd.DataFrame]

_KEY_ORDER = (CONTEXT, PERTURBATION)


def check_tables(models: Mapping[str, Tables]) -> None:
    if not models:
        raise ValueError("render_report needs at least one model's tables")
    for name, tables in models.items():
        for key in ("metrics", "summary"):
            if key not in tables:
                raise KeyError(f"tables of model {name!r} lack {key!r}; pass Evaluation.tables()")
        missing = {PERTURBATION, CONTEXT, "metric", "value"} - set(tables["metrics"].columns)
        if missing:
            raise KeyError(f"metrics table of model {name!r} lacks columns {sorted(missing)}")


def key_columns(frame: pd.DataFrame) -> list[str]:
    """Columns identifying a perturbation: context, perturbation, then any others (e.g. dose)."""
    extra = [c for c in frame.columns if c not in (*_KEY_ORDER, "metric", "value")]
    return [*_KEY_ORDER, *extra]


def metric_order(models: Mapping[str, Tables]) -> list[str]:
    order: dict[str, None] = {}
    for tables in models.values():
        order.update(dict.fromkeys(tables["metrics"]["metric"].astype(str)))
    return list(order)


def reference_rows(models: Mapping[str, Tables], role: str) -> pd.DataFrame:
    """Summary rows of ``role`` (baselines or ceiling) from the first model that has them."""
    for tables in models.values():
        summary = tables["summary"]
        rows = summary[summary["role"] == role]
        if not rows.empty:
            return rows
    return pd.DataFrame(columns=["source", "role", "metric", "mean"])


def metric_directions(models: Mapping[str, Tables]) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for tables in models.values():
        summary = tables["summary"]
        if "higher_is_better" in summary.columns:
            for metric, higher in zip(summary["metric"], summary["higher_is_better"], strict=True):
                if isinstance(higher, bool | np.bool_):
                    out.setdefault(str(metric), bool(higher))
    return out


def arrow(higher: bool | None) -> str:
    return {True: "↑", False: "↓"}.get(higher, "") if higher is not None else ""
