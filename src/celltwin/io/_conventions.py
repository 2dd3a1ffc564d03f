"""Conventions of the field as a registry: how each names its columns, read once into celltwin's.

Each :class:`Convention` is data: the obs columns where it keeps the perturbation (regular
expressions, in order of preference), its control labels, how much a match counts towards
detecting it, and a :class:`Layout` that writes canonical data back in its layout. One generic
reader (:func:`adapt_obs`) turns any of them into canonical obs columns; nothing below branches on
a convention's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd
from anndata import AnnData

from .._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    TIME,
    split_label,
)
from ._layout import Layout, copy_adata, gears_label, relabel_control
from ._problems import Problem, ValidationError, preview

#: Context given to every cell when the source names none (and ``context=`` was not passed).
DEFAULT_CONTEXT = "unknown"
#: Column-name candidates shared by all conventions, in order of preference.
CONTEXT_KEYS = (CONTEXT, "cell_type", "celltype", "cell_line", "cellline", "cell_line_name")
BATCH_KEYS = (BATCH, "gem_group", "gemgroup", "bio_rep", "replicate", "rep", "plate", "lane")
TIME_KEYS = (TIME, "timepoint", "time_point", "time_h", "hours")
TYPE_KEYS = (PERTURBATION_TYPE,)
#: Labels that mark unperturbed cells somewhere in the field.
CONTROL_LABELS = (
    CONTROL,
    "ctrl",
    "non-targeting",
    "non_targeting",
    "nontargeting",
    "NT",
    "NTC",
    "unstimulated",
    "unstim",
    "untreated",
    "unperturbed",
    "vehicle",
    "DMSO",
)


@dataclass(frozen=True)
class Options:
    """What the user told us about their columns (``None``: find it)."""

    perturbation_key: str | None = None
    #: One control label, or several (every non-targeting guide, say).
    control_label: str | tuple[str, ...] | None = None
    context_key: str | None = None
    context: str | None = None
    perturbation_type: str | None = None
    batch_key: str | None = None
    dose_key: str | None = None
    time_key: str | None = None
    gene_symbol_key: str | None = None
    #: An obs column, or a mapping, giving each guide's target gene (guide-level data).
    gene_key: str | Mapping[str, str] | None = None


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Convention:
    """How one convention of the field names perturbations, controls and covariates.

    Attributes
    ----------
    name
        Registry key, passed as ``convention=`` to :func:`celltwin.io.read`.
    description
        One line for users.
    perturbation_keys
        Regular expressions (full match) for the obs column holding the perturbation, in order of
        preference; the first one is the convention's own name for it.
    control_labels
        Values of that column that mark control cells, in order of preference.
    score
        Detection weight: how sure a match makes us (0 = never detected automatically).
    requires
        Extra evidence needed for detection, given obs and the column's values.
    null_components
        Parts of a label that are not targets (GEARS' ``ctrl`` in ``A+ctrl``).
    dose_keys, context_keys, batch_keys, time_keys
        Candidate columns for the covariates.
    write
        Canonical AnnData -> AnnData in this convention's layout (``None``: cannot be written).
    """

    name: str
    description: str
    perturbation_keys: tuple[str, ...]
    control_labels: tuple[str, ...]
    score: float
    requires: Callable[[pd.DataFrame, set[str]], bool] | None = None
    null_components: tuple[str, ...] = ()
    dose_keys: tuple[str, ...] = ()
    context_keys: tuple[str, ...] = CONTEXT_KEYS
    batch_keys: tuple[str, ...] = BATCH_KEYS
    time_keys: tuple[str, ...] = TIME_KEYS
    write: Callable[[AnnData], AnnData] | None = None
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = tuple(re.compile(p) for p in self.perturbation_keys)
        object.__setattr__(self, "_patterns", patterns)

    def find_perturbation_key(self, obs: pd.DataFrame) -> tuple[str | None, int]:
        """The first obs column matching :attr:`perturbation_keys` and the index of its pattern."""
        columns = [str(c) for c in obs.columns]
        for rank, pattern in enumerate(self._patterns):
            for column in columns:
                if pattern.fullmatch(column):
                    return column, rank
        return None, -1

    def detect(self, obs: pd.DataFrame) -> float:
        """How well ``obs`` fits this convention, from 0 (not at all) to 1."""
        if self.score == 0:
            return 0.0
        key, rank = self.find_perturbation_key(obs)
        if key is None:
            return 0.0
        values = unique_text(obs[key])
        if self.requires is not None and not self.requires(obs, values):
            return 0.0
        score = self.score * (1.0 if rank == 0 else 0.8)
        if not any(label in values for label in self.control_labels):
            score *= 0.3  # still the best guess; reading then reports the missing controls
        return score


def unique_text(column: pd.Series) -> set[str]:
    return {str(v) for v in column.dropna().unique()}


def _has_canonical_columns(obs: pd.DataFrame, values: set[str]) -> bool:
    return PERTURBATION_TYPE in obs.columns and CONTEXT in obs.columns


def _has_gears_labels(obs: pd.DataFrame, values: set[str]) -> bool:
    return any("ctrl" in split_label(v) and len(split_label(v)) > 1 for v in values)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            name="celltwin",
            description="canonical: obs perturbation (control 'control'), perturbation_type, context",
            perturbation_keys=(PERTURBATION,),
            control_labels=(CONTROL,),
            score=1.0,
            requires=_has_canonical_columns,
            dose_keys=(DOSE,),
            write=copy_adata,
        ),
        Convention(
            name="vcc",
            description="Virtual Cell Challenge / Arc State / cell-eval: obs target_gene, "
            "control 'non-targeting'",
            perturbation_keys=(
                "target_gene",
                r"target_genes?_\w+",
                r"\w+_target_genes?",
                "gene_target",
                "target_genes",
                "target",
            ),
            control_labels=("non-targeting", "non_targeting", "nontargeting", "NT", "NTC", CONTROL),
            score=0.9,
            write=Layout(
                perturbation_key="target_gene",
                format_label=relabel_control("non-targeting"),
                context_key="cell_type",
            ).write,
        ),
        Convention(
            name="gears",
            description="GEARS: obs condition 'A+ctrl' / 'A+B' / 'ctrl', cell_type; var gene_name",
            perturbation_keys=("condition",),
            control_labels=("ctrl",),
            score=0.95,
            requires=_has_gears_labels,
            null_components=("ctrl",),
            write=Layout(
                perturbation_key="condition",
                format_label=gears_label,
                context_key="cell_type",
                gene_symbol_key="gene_name",
            ).write,
        ),
        Convention(
            name="scperturb",
            description="scPerturb / pertpy: obs perturbation (control 'control'), "
            "perturbation_type, celltype, dose_value + dose_unit, time",
            perturbation_keys=(PERTURBATION,),
            control_labels=(CONTROL,),
            score=0.8,
            dose_keys=("dose_value", DOSE),
            context_keys=(*CONTEXT_KEYS, "cell_type_name"),
            write=Layout(
                perturbation_key=PERTURBATION,
                format_label=relabel_control(CONTROL),
                context_key="celltype",
                dose_keys=("dose_value", "dose_unit"),
                time_key=TIME,
            ).write,
        ),
        Convention(
            name="scgen",
            description="scGen / CPA: obs condition with a control label (control, ctrl, "
            "unstimulated, ...) and treated labels, cell_type",
            perturbation_keys=("condition", "stim", "treatment"),
            control_labels=CONTROL_LABELS,
            score=0.6,
            dose_keys=("dose_val", DOSE),
            write=Layout(
                perturbation_key="condition",
                format_label=relabel_control(CONTROL),
                context_key="cell_type",
                dose_keys=("dose_val", "dose_unit"),
            ).write,
        ),
        Convention(
            name="columns",
            description="your own columns, named with perturbation_key=, control_label=, ...",
            perturbation_keys=(),
            control_labels=CONTROL_LABELS,
            score=0.0,
        ),
    )
}


def rank_conventions(obs: pd.DataFrame) -> list[tuple[str, float]]:
    """Every convention with its detection score, best first (registry order breaks ties)."""
    scores = [(name, conv.detect(obs)) for name, conv in CONVENTIONS.items()]
    return sorted(scores, key=lambda item: -item[1])


#: Column names that suggest perturbations, and names of other annotations (never suggested
#: first as the perturbation column of a hint).
_LIKELY = re.compile(r"pert|guide|sgrna|grna|target|gene|condition|treat|drug|compound|knock", re.I)
_UNLIKELY = re.compile(
    r"batch|replicate|donor|sample|lane|gem|plate|well|cell_?type|cell_?line|phase|cluster|"
    r"leiden|louvain|sex|time|dose",
    re.I,
)


def _candidate_order(column: object) -> int:
    name = str(column)
    return 0 if _LIKELY.search(name) else 2 if _UNLIKELY.search(name) else 1


def _candidate_columns(obs: pd.DataFrame, *, limit: int = 4) -> list[str]:
    """Text columns that could hold perturbations, with a few of their values, for messages;
    those named like perturbations first, batches, samples and cell types last."""
    found = []
    for column in sorted(obs.columns, key=_candidate_order):
        series = obs[column]
        if not (series.dtype == object or isinstance(series.dtype, pd.CategoricalDtype)):
            continue
        counts = series.astype(str).value_counts()
        if 2 <= len(counts) <= max(2, len(obs) // 2):
            found.append(f"{column} ({preview(counts.index.tolist(), limit=3)})")
        if len(found) >= limit:
            break
    return found


def no_convention_problem(obs: pd.DataFrame, *, what: str | None = None) -> Problem:
    """The problem reported when no convention recognises ``obs`` (or ``what`` went wrong)."""
    known = sorted(
        {p for c in CONVENTIONS.values() for p in c.perturbation_keys if p.isidentifier()}
    )
    candidates = _candidate_columns(obs)
    example = candidates[0].split(" ")[0] if candidates else "<obs column>"
    where = f"obs columns: {preview([str(c) for c in obs.columns], limit=20) or 'none'}"
    if candidates:
        where += f"; columns that could hold perturbations: {'; '.join(candidates)}"
    return Problem(
        code="unknown_convention",
        what=what
        or "could not tell which column holds the perturbations: none of the known columns "
        f"({', '.join(known)}) is present",
        where=where,
        fix=f"name the columns, e.g. celltwin.io.read(path, perturbation_key={example!r}, "
        "control_label='<label of unperturbed cells>') (add context_key=, batch_key=, dose_key= "
        "as needed)",
    )


def resolve_convention(obs: pd.DataFrame, convention: str, options: Options) -> Convention:
    """The convention to read ``obs`` with: the one named, or the best detected one."""
    if convention != "auto":
        if convention not in CONVENTIONS:
            raise ValidationError(
                [
                    Problem(
                        code="unknown_convention_name",
                        what=f"unknown convention {convention!r}",
                        where="convention=",
                        fix=f"use 'auto' or one of {', '.join(map(repr, CONVENTIONS))}",
                    )
                ]
            )
        return CONVENTIONS[convention]
    ranked = [(name, score) for name, score in rank_conventions(obs) if score > 0]
    if options.perturbation_key is not None:
        # A detected convention still applies (GEARS' ctrl parts) if it uses the named column.
        for name, _ in ranked:
            if CONVENTIONS[name].find_perturbation_key(obs)[0] == options.perturbation_key:
                return CONVENTIONS[name]
        return CONVENTIONS["columns"]
    if not ranked:
        raise ValidationError([no_convention_problem(obs)])
    return CONVENTIONS[ranked[0][0]]
