"""Conventions of the field as a registry: how each names its columns, read once into celltwin's.

Each :class:`Convention` is data: the obs columns where it keeps the perturbation (regular
expressions, in order of preference), its control labels, how much a match counts towards
detecting it, and a :class:`Layout` that writes canonical data back in its layout. One generic
reader (:func:`adapt_obs`) turns any of them into canonical obs columns; nothing below branches on
a convention's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import (
    BATCH,
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    CRISPR_KO,
    CRISPRA,
    CRISPRI,
    DOSE,
    DOSE_UNIT,
    DRUG,
    OTHER,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
    TIME,
    UNS_KEY,
    split_label,
)
from ._dose import format_dose, parse_dose, parse_dose_value
from ._problems import Problem, ValidationError, preview

logger = logging.getLogger("celltwin")

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

# Spellings of perturbation types seen in the field (lower case, letters and digits only).
TYPE_ALIASES: dict[str, str] = {
    **{re.sub(r"[^a-z0-9]", "", t): t for t in PERTURBATION_TYPES},
    "ctrl": CONTROL,
    "crispr": CRISPR_KO,
    "crisprcas9": CRISPR_KO,
    "cas9": CRISPR_KO,
    "ko": CRISPR_KO,
    "knockout": CRISPR_KO,
    "crisprinterference": CRISPRI,
    "knockdown": CRISPRI,
    "crispractivation": CRISPRA,
    "activation": CRISPRA,
    "compound": DRUG,
    "smallmolecule": DRUG,
    "chemical": DRUG,
}

_UNIT_SUFFIX = re.compile(r"(?:^|_)(pm|nm|um|µm|μm|mm)$", re.IGNORECASE)
_TIME_VALUE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*([A-Za-z]*)\s*$")
_HOURS_PER_UNIT = {"": 1.0, "h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0}
_HOURS_PER_UNIT |= {"d": 24.0, "day": 24.0, "days": 24.0, "min": 1 / 60, "mins": 1 / 60}
_HOURS_PER_UNIT |= {"minute": 1 / 60, "minutes": 1 / 60}


@dataclass(frozen=True)
class Options:
    """What the user told us about their columns (``None``: find it)."""

    perturbation_key: str | None = None
    control_label: str | None = None
    context_key: str | None = None
    context: str | None = None
    perturbation_type: str | None = None
    batch_key: str | None = None
    dose_key: str | None = None
    time_key: str | None = None
    gene_symbol_key: str | None = None


# --- labels ----------------------------------------------------------------------------------


def canonical_components(label: str, *, null_components: frozenset[str]) -> list[int]:
    """Positions of the parts of ``label`` that are real targets (not control or ``ctrl``)."""
    return [i for i, part in enumerate(split_label(label)) if part and part not in null_components]


def map_perturbation_type(value: object) -> str | None:
    """Map a source perturbation type (``"CRISPRi"``, ``"compound"``) to a canonical one."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    key = re.sub(r"[^a-z0-9]", "", str(value).lower())
    if key in ("", "nan", "none"):
        return None
    return TYPE_ALIASES.get(key, OTHER)


def parse_time(value: object, *, unit: str = "h") -> float:
    """Read a time (``6``, ``"24h"``, ``"2 days"``) in hours; missing values give NaN."""
    text = str(value).strip()
    if text == "" or text.lower() in {"nan", "none", "<na>"}:
        return float("nan")
    match = _TIME_VALUE.match(text)
    suffix = (match.group(2) if match else "").lower() or unit.lower()
    if match is None or suffix not in _HOURS_PER_UNIT:
        raise ValueError(f"cannot read time {text!r}: expected hours or a number with h/d/min")
    return float(match.group(1)) * _HOURS_PER_UNIT[suffix]


# --- writing: a layout per convention ----------------------------------------------------------


def _gears_label(perturbation: str) -> str:
    parts = [p for p in split_label(perturbation) if p and p != CONTROL]
    if not parts:
        return "ctrl"
    return COMBO_SEP.join(parts) if len(parts) > 1 else f"{parts[0]}{COMBO_SEP}ctrl"


def _relabel_control(label: str) -> Callable[[str], str]:
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


def _copy(adata: AnnData) -> AnnData:
    return adata.copy()


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
        values = _unique_text(obs[key])
        if self.requires is not None and not self.requires(obs, values):
            return 0.0
        score = self.score * (1.0 if rank == 0 else 0.8)
        if not any(label in values for label in self.control_labels):
            score *= 0.3  # still the best guess; reading then reports the missing controls
        return score


def _unique_text(column: pd.Series) -> set[str]:
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
            write=_copy,
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
                format_label=_relabel_control("non-targeting"),
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
                format_label=_gears_label,
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
                format_label=_relabel_control(CONTROL),
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
                format_label=_relabel_control(CONTROL),
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


def _candidate_columns(obs: pd.DataFrame, *, limit: int = 4) -> list[str]:
    """Text columns that could hold perturbations, with a few of their values, for messages."""
    found = []
    for column in obs.columns:
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


# --- reading: any convention -> canonical obs --------------------------------------------------


def _find_column(obs: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in obs.columns), None)


def _missing_column(option: str, key: str, obs: pd.DataFrame) -> Problem:
    return Problem(
        code="missing_column",
        what=f"{option}={key!r} is not an obs column",
        where=f"obs columns: {preview([str(c) for c in obs.columns], limit=20) or 'none'}",
        fix=f"pass one of the obs columns as {option}=",
    )


def _missing_values(key: str, series: pd.Series, what: str, option: str) -> Problem | None:
    text = series.astype(object)
    missing = series.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    if not missing.any():
        return None
    cells = series.index[missing].astype(str).tolist()
    return Problem(
        code="missing_values",
        what=f"{missing.sum()} cell(s) have no {what}",
        where=f"obs[{key!r}], cells {preview(cells, limit=3)}",
        fix=f"drop them (adata = adata[adata.obs[{key!r}].notna()].copy()) or fill them in, "
        f"or pass another column as {option}=",
    )


def _category(values: np.ndarray | pd.Series) -> pd.Categorical:
    series = pd.Series(np.asarray(values, dtype=object))
    text = np.where(series.isna(), None, series.astype(str))
    return pd.Categorical(text)


def _put(obs: pd.DataFrame, name: str, values: Any, source: pd.DataFrame) -> None:
    """Set canonical column ``name``, first keeping a differing original as ``<name>_original``."""
    if name in source.columns:
        old = source[name].astype(str).to_numpy()
        if not np.array_equal(old, pd.Series(np.asarray(values)).astype(str).to_numpy()):
            keep = f"{name}_original"
            while keep in obs.columns:
                keep += "_"
            obs[keep] = source[name].to_numpy()
    obs[name] = values


@dataclass
class _Source:
    """Which source column (or value) each canonical column is read from."""

    perturbation_key: str
    control_label: str
    context_key: str | None = None
    batch_key: str | None = None
    dose_key: str | None = None
    dose_unit: str = DOSE_UNIT
    dose_unit_key: str | None = None
    time_key: str | None = None
    type_key: str | None = None

    def record(self, convention: str, options: Options, context: str | None) -> dict[str, str]:
        """The part of ``uns['celltwin']['convention']`` saying what was read from where."""
        record = {"name": convention, "perturbation_key": self.perturbation_key}
        record["control_label"] = self.control_label
        optional = {
            "context_key": self.context_key,
            "context": context,
            "batch_key": self.batch_key,
            "dose_key": self.dose_key,
            "dose_unit": self.dose_unit if self.dose_key and not self.dose_unit_key else None,
            "dose_unit_key": self.dose_unit_key,
            "time_key": self.time_key,
            "perturbation_type_key": self.type_key,
            "perturbation_type": options.perturbation_type,
        }
        record.update({k: v for k, v in optional.items() if v is not None})
        return record


def _resolve_sources(
    obs: pd.DataFrame, convention: Convention, options: Options
) -> tuple[_Source | None, str | None, list[Problem]]:
    problems: list[Problem] = []
    key = options.perturbation_key or convention.find_perturbation_key(obs)[0]
    if key is None:
        what = f"convention={convention.name!r} found none of its perturbation columns"
        if not convention.perturbation_keys:
            what = f"convention={convention.name!r} needs perturbation_key= (the obs column"
            what += " holding perturbations)"
        return None, None, [no_convention_problem(obs, what=what)]
    if key not in obs.columns:
        return None, None, [_missing_column("perturbation_key", key, obs)]
    missing = _missing_values(key, obs[key], "perturbation label", "perturbation_key")
    if missing is not None:
        problems.append(missing)
    values = _unique_text(obs[key])
    control = options.control_label
    if control is None:
        control = next((c for c in convention.control_labels if c in values), None)
    if control is None or control not in values:
        problems.append(
            Problem(
                code="no_controls",
                what="no control cells: "
                + (
                    f"no cell is labelled control_label={control!r}"
                    if control is not None
                    else f"none of the control labels {preview(convention.control_labels, limit=6)}"
                    " occurs"
                ),
                where=f"obs[{key!r}] values: {preview(sorted(values), limit=8)}",
                fix="pass control_label='<the value of obs[" + repr(key) + "] that marks "
                "unperturbed cells>'; celltwin needs control cells to measure effects",
            )
        )
        control = control or ""
    source = _Source(perturbation_key=key, control_label=control)

    def pick(option: str, given: str | None, candidates: tuple[str, ...]) -> str | None:
        if given is not None:
            if given not in obs.columns:
                problems.append(_missing_column(option, given, obs))
                return None
            return given
        return _find_column(obs, tuple(c for c in candidates if c != key))

    context_value = options.context
    if options.context_key is not None and options.context is not None:
        problems.append(
            Problem(
                code="conflicting_options",
                what="both context_key and context were given",
                where=f"context_key={options.context_key!r}, context={options.context!r}",
                fix="pass context_key= to read contexts from a column, or context= to give every "
                "cell the same context, not both",
            )
        )
    source.context_key = (
        None
        if options.context is not None
        else pick("context_key", options.context_key, convention.context_keys)
    )
    if source.context_key is None and context_value is None:
        context_value = DEFAULT_CONTEXT
    source.batch_key = pick("batch_key", options.batch_key, convention.batch_keys)
    source.dose_key = pick("dose_key", options.dose_key, convention.dose_keys)
    source.time_key = pick("time_key", options.time_key, convention.time_keys)
    source.type_key = _find_column(obs, tuple(c for c in TYPE_KEYS if c != key))
    if source.dose_key is not None:
        unit_key = _find_column(obs, (f"{source.dose_key}_unit", "dose_unit"))
        if unit_key is not None:
            source.dose_unit_key = unit_key
        else:
            match = _UNIT_SUFFIX.search(source.dose_key)
            source.dose_unit = match.group(1) if match else DOSE_UNIT
    if (
        options.perturbation_type is not None
        and options.perturbation_type not in PERTURBATION_TYPES
    ):
        problems.append(
            Problem(
                code="bad_perturbation_type",
                what=f"unknown perturbation_type {options.perturbation_type!r}",
                where="perturbation_type=",
                fix=f"use one of {', '.join(PERTURBATION_TYPES)}",
            )
        )
    if source.context_key is not None:
        problem = _missing_values(
            source.context_key, obs[source.context_key], "context", "context_key"
        )
        if problem is not None:
            problems.append(problem)
    return source, context_value, problems


def _canonical_condition(
    label: str,
    dose: str | None,
    unit: str,
    source_type: str | None,
    *,
    source: _Source,
    nulls: frozenset[str],
    options: Options,
) -> tuple[str, str, str]:
    """(perturbation, dose, perturbation_type) for one distinct source row."""
    parts = split_label(label)
    keep = (
        [] if label == source.control_label else canonical_components(label, null_components=nulls)
    )
    if not keep:
        return CONTROL, "", CONTROL
    doses: list[float | None] = [None] * len(parts)
    if dose is not None and dose.strip().lower() not in ("", "nan", "none", "<na>"):
        dose_parts = dose.split(COMBO_SEP)
        if len(dose_parts) == len(parts):
            doses = [parse_dose_value(d, unit=unit) for d in dose_parts]
        elif len(dose_parts) == len(keep):
            for i, d in zip(keep, dose_parts, strict=True):
                doses[i] = parse_dose_value(d, unit=unit)
        else:
            raise ValueError(
                f"dose {dose!r} has {len(dose_parts)} part(s) for perturbation {label!r} with "
                f"{len(keep)} component(s): give one dose per component joined by '+'"
            )
    by_component: dict[str, float | None] = {}
    for i in keep:
        by_component.setdefault(parts[i], doses[i])
    components = sorted(by_component)
    ptype = options.perturbation_type or map_perturbation_type(source_type) or OTHER
    return (
        COMBO_SEP.join(components),
        format_dose([by_component[c] for c in components]),
        ptype,
    )


def adapt_obs(
    obs: pd.DataFrame, convention: Convention, options: Options
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return canonical obs (original columns kept) and the record of what was read from where.

    Raises
    ------
    ValidationError
        Listing every problem found (missing columns or values, no control cells, bad doses).
    """
    source, context_value, problems = _resolve_sources(obs, convention, options)
    if source is None or problems:
        raise ValidationError(problems)
    nulls = frozenset({*convention.null_components, source.control_label, CONTROL})
    columns = {"label": obs[source.perturbation_key].astype(str).to_numpy()}
    optional = {"dose": source.dose_key, "unit": source.dose_unit_key, "type": source.type_key}
    for name, key in optional.items():
        if key is not None:
            columns[name] = obs[key].astype(str).to_numpy()
    # Work on distinct rows only: a million cells typically hold a few thousand conditions.
    codes, uniques = pd.MultiIndex.from_arrays(
        list(columns.values()), names=list(columns)
    ).factorize()
    results = []
    for row in uniques:
        values = dict(zip(columns, row if isinstance(row, tuple) else (row,), strict=True))
        try:
            results.append(
                _canonical_condition(
                    values["label"],
                    values.get("dose"),
                    values.get("unit", source.dose_unit),
                    values.get("type"),
                    source=source,
                    nulls=nulls,
                    options=options,
                )
            )
        except ValueError as err:
            where = f"obs[{source.perturbation_key!r}] = {values['label']!r}"
            if source.dose_key is not None:
                where += f", obs[{source.dose_key!r}] = {values.get('dose')!r}"
            problems.append(
                Problem(
                    code="bad_dose",
                    what=f"cannot read the dose: {err}",
                    where=where,
                    fix="give doses as numbers with a unit (10, '10 nM', '0.1+1'), or pass "
                    "dose_key= naming the right column",
                )
            )
            results.append((CONTROL, "", CONTROL))
    if problems:
        raise ValidationError(problems[:10])
    table = np.asarray(results, dtype=object)[codes]
    new = obs.copy()
    _put(new, PERTURBATION, _category(table[:, 0]), obs)
    _put(new, PERTURBATION_TYPE, _category(table[:, 2]), obs)
    if source.context_key is not None:
        _put(new, CONTEXT, _category(obs[source.context_key]), obs)
    else:
        _put(new, CONTEXT, pd.Categorical([str(context_value)] * len(obs)), obs)
    if source.batch_key is not None:
        _put(new, BATCH, _category(obs[source.batch_key]), obs)
    if source.dose_key is not None:
        _put(new, DOSE, _category(table[:, 1]), obs)
    if source.time_key is not None:
        try:
            # A unit in the column's name (time_min, time_days) applies to bare numbers.
            suffix = re.search(r"_([a-z]+)$", source.time_key.lower())
            unit = suffix.group(1) if suffix and suffix.group(1) in _HOURS_PER_UNIT else "h"
            times = {v: parse_time(v, unit=unit) for v in obs[source.time_key].astype(str).unique()}
        except ValueError as err:
            raise ValidationError(
                [
                    Problem(
                        code="bad_time",
                        what=str(err),
                        where=f"obs[{source.time_key!r}]",
                        fix="give times in hours (6, '24h', '2d'), or pass time_key= naming the "
                        "right column",
                    )
                ]
            ) from None
        _put(new, TIME, obs[source.time_key].astype(str).map(times).to_numpy(np.float64), obs)
    return new, source.record(convention.name, options, context_value)
