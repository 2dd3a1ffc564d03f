"""Reading any convention into canonical obs: which source column holds what, and its values.

:func:`adapt_obs` finds the perturbation, control, context, batch, dose and time columns a
:class:`~celltwin.io.Convention` (or the user's options) names, and rewrites each distinct
condition in celltwin's terms: sorted ``+``-joined targets, doses in µM, a canonical type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._keys import (
    BATCH,
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    DOSE,
    DOSE_UNIT,
    OTHER,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
    TIME,
    split_label,
)
from ._conventions import (
    DEFAULT_CONTEXT,
    TYPE_KEYS,
    Convention,
    Options,
    no_convention_problem,
    unique_text,
)
from ._dose import format_dose, parse_dose_value
from ._guides import control_label_list, map_guides
from ._labels import (
    UNIT_SUFFIX,
    canonical_components,
    hours_column,
    map_perturbation_type,
)
from ._problems import Problem, ValidationError, preview

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
    control_labels: tuple[str, ...]
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
        record["control_label"] = ",".join(self.control_labels)
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
    """Where each canonical column is read from, the context given to every cell, the problems."""
    source, problems = _perturbation_source(obs, convention, options)
    if source is None:
        return None, None, problems
    context_value = _pick_columns(obs, convention, options, source, problems)
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


def _one_or_list(labels: list[str]) -> str | list[str]:
    return labels[0] if len(labels) == 1 else labels


def _perturbation_source(
    obs: pd.DataFrame, convention: Convention, options: Options
) -> tuple[_Source | None, list[Problem]]:
    """The perturbation column and the control label (``None`` when no column is found)."""
    problems: list[Problem] = []
    key = options.perturbation_key or convention.find_perturbation_key(obs)[0]
    if key is None:
        what = f"convention={convention.name!r} found none of its perturbation columns"
        if not convention.perturbation_keys:
            what = f"convention={convention.name!r} needs perturbation_key= (the obs column"
            what += " holding perturbations)"
        return None, [no_convention_problem(obs, what=what)]
    if key not in obs.columns:
        return None, [_missing_column("perturbation_key", key, obs)]
    missing = _missing_values(key, obs[key], "perturbation label", "perturbation_key")
    if missing is not None:
        problems.append(missing)
    values = unique_text(obs[key])
    given = control_label_list(options.control_label)
    if not given:
        given = [next((c for c in convention.control_labels if c in values), "")]
    controls = tuple(c for c in given if c in values)
    if not controls:
        problems.append(
            Problem(
                code="no_controls",
                what="no control cells: "
                + (
                    f"no cell is labelled control_label={_one_or_list(given)!r}"
                    if any(given)
                    else f"none of the control labels {preview(convention.control_labels, limit=6)}"
                    " occurs"
                ),
                where=f"obs[{key!r}] values: {preview(sorted(values), limit=8)}",
                fix="pass control_label='<the value of obs[" + repr(key) + "] that marks "
                "unperturbed cells>' (several: a list; CLI: --control-label A,B); celltwin needs "
                "control cells to measure effects",
            )
        )
        controls = tuple(given)
    return _Source(perturbation_key=key, control_labels=controls), problems


def _pick_columns(
    obs: pd.DataFrame,
    convention: Convention,
    options: Options,
    source: _Source,
    problems: list[Problem],
) -> str | None:
    """Fill in ``source``'s covariate columns (problems appended); return the context value."""
    key = source.perturbation_key

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
            match = UNIT_SUFFIX.search(source.dose_key)
            source.dose_unit = match.group(1) if match else DOSE_UNIT
    return context_value


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
        [] if label in source.control_labels else canonical_components(label, null_components=nulls)
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
    key = options.perturbation_key or convention.find_perturbation_key(obs)[0]
    read_from, options, guide_problems = map_guides(obs, key, options)
    source, context_value, problems = _resolve_sources(read_from, convention, options)
    problems = guide_problems + problems
    if source is None or problems:
        raise ValidationError(problems)
    table = _condition_table(read_from, source, convention, options)
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
        _put(new, TIME, hours_column(obs, source.time_key), obs)
    record = source.record(convention.name, options, context_value)
    if options.gene_key is not None:
        record["gene_key"] = (
            options.gene_key if isinstance(options.gene_key, str) else "mapping (gene_key=)"
        )
    return new, record


def _condition_table(
    obs: pd.DataFrame, source: _Source, convention: Convention, options: Options
) -> np.ndarray:
    """Cells x (perturbation, dose, perturbation_type), canonical, read once per distinct row.

    Raises
    ------
    ValidationError
        Naming the first ten rows whose dose cannot be read.
    """
    nulls = frozenset({*convention.null_components, *source.control_labels, CONTROL})
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
    problems: list[Problem] = []
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
            problems.append(_bad_dose(err, values, source))
            results.append((CONTROL, "", CONTROL))
    if problems:
        raise ValidationError(problems[:10])
    return np.asarray(results, dtype=object)[codes]


def _bad_dose(err: ValueError, values: dict[str, str], source: _Source) -> Problem:
    where = f"obs[{source.perturbation_key!r}] = {values['label']!r}"
    if source.dose_key is not None:
        where += f", obs[{source.dose_key!r}] = {values.get('dose')!r}"
    return Problem(
        code="bad_dose",
        what=f"cannot read the dose: {err}",
        where=where,
        fix="give doses as numbers with a unit (10, '10 nM', '0.1+1'), or pass "
        "dose_key= naming the right column",
    )
