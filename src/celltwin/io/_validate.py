"""Validation at the boundary: whether the data meets celltwin's data model.

The obs columns and gene names are checked here; the values of X and of the counts layer by
:mod:`._expression`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from anndata import AnnData

from .._keys import (
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
    REQUIRED_OBS,
    UNS_KEY,
)
from ._adapt import adapt_obs
from ._conventions import Options, resolve_convention
from ._expression import counts_layer_problems, expression_problems
from ._genes import adapt_var, var_name_problems
from ._guides import guide_problems
from ._problems import Problem, ValidationError, preview, raise_if_errors


def _obs_problems(obs: pd.DataFrame) -> list[Problem]:
    missing = [c for c in REQUIRED_OBS if c not in obs.columns]
    if missing:
        return [
            Problem(
                code="not_canonical",
                what=f"obs lacks the canonical column(s) {preview(missing)}",
                where=f"obs columns: {preview([str(c) for c in obs.columns], limit=12) or 'none'}",
                fix="convert it first: celltwin.io.to_canonical(adata) (or celltwin.io.read(path))",
            )
        ]
    return _missing_value_problems(obs) + _type_problems(obs) + _control_problems(obs)


def _missing_value_problems(obs: pd.DataFrame) -> list[Problem]:
    problems = []
    for key in REQUIRED_OBS:
        series = obs[key]
        bad = series.isna().to_numpy() | (series.astype(str).str.strip() == "").to_numpy()
        if bad.any():
            problems.append(
                Problem(
                    code="missing_values",
                    what=f"{bad.sum()} cell(s) have no {key}",
                    where=f"obs[{key!r}], cells {preview(obs.index[bad].astype(str).tolist(), limit=3)}",
                    fix=f"drop them (adata = adata[adata.obs[{key!r}].notna()].copy()) or fill them",
                )
            )
    return problems


def _type_problems(obs: pd.DataFrame) -> list[Problem]:
    types = set(obs[PERTURBATION_TYPE].dropna().astype(str).unique())
    unknown = sorted(types - set(PERTURBATION_TYPES))
    if not unknown:
        return []
    return [
        Problem(
            code="bad_perturbation_type",
            what="unknown perturbation type(s)",
            where=f"obs[{PERTURBATION_TYPE!r}] values {preview(unknown)}",
            fix=f"use one of {', '.join(PERTURBATION_TYPES)}",
        )
    ]


def _control_problems(obs: pd.DataFrame) -> list[Problem]:
    is_control = (obs[PERTURBATION].astype(str) == CONTROL).to_numpy()
    if not is_control.any():
        values = obs[PERTURBATION].astype(str).value_counts().index.tolist()
        return [
            Problem(
                code="no_controls",
                what="no control cells",
                where=f"obs[{PERTURBATION!r}] has no {CONTROL!r}; values: {preview(values, limit=8)}",
                fix="read the data with control_label='<label of unperturbed cells>' "
                "(celltwin.io.read / to_canonical); effects are measured against controls",
            )
        ]
    problems = []
    contexts = obs[CONTEXT].astype(str)
    without = sorted(set(contexts) - set(contexts[is_control]))
    if without:
        problems.append(
            Problem(
                code="context_without_controls",
                what=f"{len(without)} context(s) have no control cells, so effects there "
                "cannot be measured against their own controls",
                where=f"obs[{CONTEXT!r}] values {preview(without)}",
                fix="add control cells for them, or drop those contexts",
                severity="warning",
            )
        )
    wrong = is_control & (obs[PERTURBATION_TYPE].astype(str) != CONTROL).to_numpy()
    if wrong.any():
        problems.append(
            Problem(
                code="control_type",
                what=f"{wrong.sum()} control cell(s) have a perturbation_type other than 'control'",
                where=f"obs[{PERTURBATION_TYPE!r}] of cells with {PERTURBATION}={CONTROL!r}",
                fix="set obs['perturbation_type'] to 'control' for control cells",
            )
        )
    return problems


def _guide_problems(obs: pd.DataFrame, genes: pd.Index, record: dict[str, Any]) -> list[Problem]:
    """Guide-level data (perturbations named by guide), for canonical obs only."""
    if any(c not in obs.columns for c in REQUIRED_OBS):
        return []
    labels = str(record.get("control_label", "")).split(",")
    return guide_problems(
        obs,
        genes.astype(str),
        control_labels=[c for c in labels if c],
        source_key=str(record.get("perturbation_key", PERTURBATION)),
    )


def matrix_problems(adata: AnnData, *, counts_ok: bool, require_counts: bool) -> list[Problem]:
    """Problems of the values of X (an absent X is not one) and of the counts layer."""
    problems = [] if adata.X is None else expression_problems(adata.X, counts_ok=counts_ok)
    counts = adata.layers[COUNTS_LAYER] if COUNTS_LAYER in adata.layers else None
    return problems + counts_layer_problems(counts, adata.X, require_counts=require_counts)


def canonical_problems(
    adata: AnnData, *, require_counts: bool = False, counts_ok: bool = False
) -> list[Problem]:
    """Every problem of an AnnData that claims to be canonical (no adaptation is tried)."""
    problems = _obs_problems(adata.obs) + _guide_problems(
        adata.obs, adata.var_names, dict(adata.uns.get(UNS_KEY, {}).get("convention", {}))
    )
    problems += var_name_problems(pd.Index(adata.var_names), var_columns=list(adata.var.columns))
    return problems + matrix_problems(adata, counts_ok=counts_ok, require_counts=require_counts)


def inspect_raw(adata: AnnData) -> tuple[pd.DataFrame | None, dict[str, str], list[Problem]]:
    """Adapt obs and var of non-canonical data without touching X, collecting problems.

    Returns the canonical obs (``None`` when it could not be made), the convention record and
    the problems met; X is checked as a source (raw counts in X are fine: reading normalises them).
    """
    problems: list[Problem] = []
    obs: pd.DataFrame | None = None
    record: dict[str, str] = {}
    try:
        convention = resolve_convention(adata.obs, "auto", Options())
        obs, record = adapt_obs(adata.obs, convention, Options())
    except ValidationError as err:
        problems += err.problems
    try:
        adapt_var(adata.var)
    except ValidationError as err:
        problems += err.problems
    if obs is not None:
        problems += _obs_problems(obs) + _guide_problems(obs, adata.var_names, record)
    problems += matrix_problems(adata, counts_ok=True, require_counts=False)
    return obs, record, problems


def is_canonical(adata: AnnData) -> bool:
    """Whether obs already has every canonical column."""
    return all(c in adata.obs.columns for c in REQUIRED_OBS)


def check(adata: AnnData, *, require_counts: bool = False) -> list[Problem]:
    """List the problems celltwin would meet with ``adata``, without raising.

    Canonical data is checked as it is. Other data (a file in another convention) is first read
    the way :func:`celltwin.io.read` would, on obs and var only, so the problems are the ones
    reading it would report: raw counts in X are not a problem there, since reading normalises.

    Parameters
    ----------
    adata
        Canonical or not.
    require_counts
        Also require raw integer counts (in ``layers['counts']``, or X for non-canonical data).

    Returns
    -------
    list[Problem]
        Errors and warnings, each naming what, where and the fix; empty when all is well.
    """
    if is_canonical(adata):
        # A backed file read with read(backed=True) keeps its counts in X until loaded.
        return canonical_problems(adata, require_counts=require_counts, counts_ok=adata.isbacked)
    problems = inspect_raw(adata)[2]
    if require_counts and COUNTS_LAYER not in adata.layers:
        problems += counts_layer_problems(None, adata.X, require_counts=True)
    return problems


def validate(adata: AnnData, *, require_counts: bool = False) -> None:
    """Raise :class:`ValidationError` unless ``adata`` is valid canonical celltwin data.

    Checks the canonical obs columns (no missing values, known perturbation types, control cells),
    unique non-empty gene symbols, finite non-negative values, X log-normalised, the counts layer
    (when present, or required) holding integer counts.

    Parameters
    ----------
    adata
        Canonical AnnData, as returned by :func:`celltwin.io.read` or :func:`to_canonical`.
    require_counts
        Also require raw integer counts in ``layers['counts']``.

    Raises
    ------
    ValidationError
        Listing every error found; warnings are not raised (see :func:`check`).
    """
    raise_if_errors(canonical_problems(adata, require_counts=require_counts))
