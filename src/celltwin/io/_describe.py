"""What a dataset holds, in celltwin's terms (for ``celltwin info``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    TIME,
    UNS_KEY,
    split_label,
)
from ._expression import matrix_stats
from ._problems import Problem
from ._splits import SplitSummary, describe_split, split_params
from ._validate import check, inspect_raw, is_canonical


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset described in celltwin's terms.

    Counts (``dict[str, int]``) are numbers of cells, largest first.
    """

    #: Convention the data was read from (``None`` when none was recognised).
    convention: str | None
    #: Which source column or value each canonical column came from (``uns['celltwin']['convention']``).
    columns: dict[str, str]
    n_cells: int
    n_genes: int
    #: What X holds: ``counts``, ``log_normalized``, ``not_log``, ``negative``, ``non_finite``, ``empty``.
    x_kind: str
    #: The range of X's values, and whether they are whole numbers.
    x_values: str
    counts_layer: bool
    contexts: dict[str, int]
    #: Distinct non-control perturbations.
    n_perturbations: int
    #: Distinct non-control perturbations of each type.
    perturbations_by_type: dict[str, int]
    top_perturbations: dict[str, int]
    n_control_cells: int
    controls_per_context: dict[str, int]
    #: Number of (context, perturbation) pairs with perturbed cells.
    n_conditions: int
    #: ``min``, ``median`` and ``max`` cells over those conditions.
    cells_per_condition: dict[str, float]
    #: Distinct perturbations with two components or more, and the largest number of components.
    n_combinations: int
    max_components: int
    #: Cells per canonical dose string (µM), dosed cells only.
    doses: dict[str, int]
    batches: dict[str, int]
    #: Cells per time point (hours).
    times: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    #: Splits stored in the file (``celltwin split``), by obs column.
    splits: dict[str, SplitSummary] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict."""
        out = asdict(self)
        out["problems"] = [p.to_dict() for p in self.problems]
        return out

    def to_text(self) -> str:
        """A readable multi-line report."""
        lines = ["celltwin dataset summary"]

        def row(label: str, text: str) -> None:
            lines.append(f"  {label:<18}{text}")

        row("convention", (self.convention or "not recognised") + _columns_text(self.columns))
        row("cells x genes", f"{self.n_cells:,} x {self.n_genes:,}")
        layer = "present" if self.counts_layer else "absent"
        row("X", f"{self.x_kind} ({self.x_values}); layers[{COUNTS_LAYER!r}] {layer}")
        row(f"contexts ({len(self.contexts)})", _counts_text(self.contexts))
        by_type = ", ".join(f"{k}: {v}" for k, v in self.perturbations_by_type.items())
        row("perturbations", f"{self.n_perturbations:,}" + (f" ({by_type})" if by_type else ""))
        row("top", _counts_text(self.top_perturbations, limit=len(self.top_perturbations)))
        row("control cells", f"{self.n_control_cells:,}")
        row("  per context", _counts_text(self.controls_per_context))
        if self.n_conditions:
            c = self.cells_per_condition
            row(
                "cells/condition",
                f"min {c['min']:,.0f}, median {c['median']:,.0f}, max {c['max']:,.0f} "
                f"over {self.n_conditions:,} (context, perturbation) pairs",
            )
        combos = (
            f"{self.n_combinations:,} (up to {self.max_components} components)"
            if self.n_combinations
            else "none"
        )
        row("combinations", combos)
        row(f"doses ({len(self.doses)})", _counts_text(self.doses, unit=" µM"))
        row(f"batches ({len(self.batches)})", _counts_text(self.batches))
        row(f"times ({len(self.times)})", _counts_text(self.times, unit=" h"))
        n_errors = sum(p.severity == "error" for p in self.problems)
        row(
            "problems",
            "none"
            if not self.problems
            else f"{n_errors} error(s), {len(self.problems) - n_errors} warning(s)",
        )
        lines += [f"    - {p}" for p in self.problems]
        for split in self.splits.values():
            lines += ["", split.to_text()]
        return "\n".join(lines)


def _columns_text(columns: dict[str, str]) -> str:
    shown = [f"{k}={v!r}" for k, v in columns.items() if k != "name"]
    return f" ({', '.join(shown)})" if shown else ""


def _counts_text(counts: dict[str, int], *, limit: int = 8, unit: str = "") -> str:
    if not counts:
        return "none"
    items = list(counts.items())
    text = ", ".join(f"{k}{unit}: {v:,}" for k, v in items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _value_counts(series: pd.Series) -> dict[str, int]:
    counts = series.astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def describe(adata: AnnData, *, top: int = 10) -> DatasetSummary:
    """Describe ``adata`` in celltwin's terms: convention, conditions, controls, problems.

    Works on canonical data and on data in any registered convention (read on obs and var only,
    the way :func:`celltwin.io.read` would); X is looked at, not changed.

    Parameters
    ----------
    adata
        Any AnnData, in memory or backed.
    top
        How many of the largest perturbations to list.

    Examples
    --------
    >>> print(describe(adata).to_text())  # doctest: +SKIP
    """
    if is_canonical(adata):
        obs: pd.DataFrame | None = adata.obs
        record = dict(adata.uns.get(UNS_KEY, {}).get("convention", {})) or {"name": "celltwin"}
        problems = check(adata)
    else:
        obs, record, problems = inspect_raw(adata)
    stats = matrix_stats(adata.X)
    return DatasetSummary(
        convention=record.get("name"),
        columns={str(k): str(v) for k, v in record.items()},
        n_cells=int(adata.n_obs),
        n_genes=int(adata.n_vars),
        x_kind=stats.kind,
        x_values=stats.describe(),
        counts_layer=COUNTS_LAYER in adata.layers,
        problems=problems,
        splits=_splits(adata) if obs is not None else {},
        **(_no_conditions() if obs is None else _conditions(obs, top=top)),
    )


def _splits(adata: AnnData) -> dict[str, SplitSummary]:
    """The splits stored in ``adata`` (canonical data only: a split needs canonical obs)."""
    if not is_canonical(adata):
        return {}
    return {key: describe_split(adata, key=key) for key in split_params(adata) if key in adata.obs}


def _no_conditions() -> dict[str, Any]:
    """The condition fields of a summary when obs could not be read."""
    counts = ("contexts", "perturbations_by_type", "top_perturbations", "controls_per_context")
    numbers = ("n_perturbations", "n_control_cells", "n_conditions", "n_combinations")
    return {
        **{key: {} for key in (*counts, "cells_per_condition", "doses", "batches", "times")},
        **{key: 0 for key in (*numbers, "max_components")},
    }


def _conditions(obs: pd.DataFrame, *, top: int) -> dict[str, Any]:
    """The condition fields of a summary: contexts, perturbations, controls, doses, ..."""
    empty: dict[str, int] = {}
    perturbation = obs[PERTURBATION].astype(str)
    is_control = (perturbation == CONTROL).to_numpy()
    perturbed = obs.loc[~is_control]
    per_condition = perturbed.groupby(
        [perturbed[CONTEXT].astype(str), perturbed[PERTURBATION].astype(str)], observed=True
    ).size()
    per_condition = per_condition[per_condition > 0]
    names = perturbed[PERTURBATION].astype(str).unique()
    sizes = [len([p for p in split_label(n) if p]) for n in names]
    by_type = (
        perturbed.groupby(perturbed[PERTURBATION_TYPE].astype(str), observed=True)[PERTURBATION]
        .nunique()
        .sort_values(ascending=False)
    )
    doses = _value_counts(obs.loc[obs[DOSE].astype(str) != "", DOSE]) if DOSE in obs else empty
    times = _value_counts(obs[TIME].dropna().map(lambda t: f"{t:g}")) if TIME in obs else empty
    return {
        "contexts": _value_counts(obs[CONTEXT]),
        "n_perturbations": len(names),
        "perturbations_by_type": {str(k): int(v) for k, v in by_type.items()},
        "top_perturbations": dict(list(_value_counts(perturbed[PERTURBATION]).items())[:top]),
        "n_control_cells": int(is_control.sum()),
        "controls_per_context": _value_counts(obs.loc[is_control, CONTEXT]),
        "n_conditions": len(per_condition),
        "cells_per_condition": (
            {
                "min": float(per_condition.min()),
                "median": float(np.median(per_condition.to_numpy())),
                "max": float(per_condition.max()),
            }
            if len(per_condition)
            else {}
        ),
        "n_combinations": sum(s > 1 for s in sizes),
        "max_components": max(sizes, default=0),
        "doses": doses,
        "batches": _value_counts(obs[BATCH].dropna()) if BATCH in obs else empty,
        "times": times,
    }
