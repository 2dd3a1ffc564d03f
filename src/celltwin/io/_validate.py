"""Validation at the boundary: what is in X, and whether the data meets celltwin's data model.

Matrix checks are cheap on large data: sparse matrices are checked through their stored values
(``.data``) only, and the counts-or-log heuristic looks at a sample of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import (
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
    REQUIRED_OBS,
)
from ._conventions import Options, adapt_obs, resolve_convention
from ._genes import adapt_var, var_name_problems
from ._problems import Problem, ValidationError, preview, raise_if_errors

XKind = Literal["counts", "log_normalized", "not_log", "negative", "non_finite", "empty"]

#: Rows looked at for the counts-or-log heuristic on large matrices.
SAMPLE_ROWS = 2000
#: Above this, non-integer non-negative values are not log-normalised (log1p of CP10k tops at ~9;
#: log1p of a million counts is ~14).
LOG_MAX = 25.0
_CHUNK = 1 << 22


@dataclass(frozen=True)
class MatrixStats:
    """What a matrix holds, from its values.

    Attributes
    ----------
    kind
        ``counts`` (non-negative integers), ``log_normalized`` (non-negative, non-integer, at most
        :data:`LOG_MAX`), ``not_log`` (non-integer, larger), ``negative``, ``non_finite`` or
        ``empty`` (no non-zero value).
    min, max
        Over the values looked at (NaN/inf excluded).
    n_negative, n_non_finite
        Counted over all stored values when the matrix is in memory, over the sample otherwise.
    integer
        Whether every value looked at is a whole number.
    rows_sampled
        Rows used for the integer test (``n_rows`` when all of them).
    """

    kind: XKind
    min: float
    max: float
    n_negative: int
    n_non_finite: int
    integer: bool
    rows_sampled: int
    n_rows: int

    def describe(self) -> str:
        """Short text such as ``non-integer values in [0, 6.8]``."""
        numbers = "integer" if self.integer else "non-integer"
        text = f"{numbers} values in [{self.min:.4g}, {self.max:.4g}]"
        if self.rows_sampled < self.n_rows:
            text += f" (sample of {self.rows_sampled} of {self.n_rows} rows)"
        return text


def _values_of(block: Any) -> np.ndarray:
    if sp.issparse(block):
        return np.asarray(block.data)
    if hasattr(block, "toarray"):  # sparse arrays of other libraries
        return np.asarray(block.toarray()).ravel()
    return np.asarray(block).ravel()


def _chunks(matrix: Any) -> Any:
    """Stored values of an in-memory matrix, in chunks (no full-size temporary arrays)."""
    if sp.issparse(matrix):
        data = matrix.data
        for start in range(0, data.size, _CHUNK):
            yield data[start : start + _CHUNK]
    else:
        step = max(1, _CHUNK // max(1, matrix.shape[1]))
        for start in range(0, matrix.shape[0], step):
            yield np.asarray(matrix[start : start + step]).ravel()


def matrix_stats(matrix: Any, *, max_rows: int = SAMPLE_ROWS, seed: int = 0) -> MatrixStats:
    """Look at a cells x genes matrix (dense, sparse or backed) and tell what it holds.

    Negative and non-finite values are counted over every stored value of an in-memory matrix;
    whether the values are whole numbers, and their range, come from ``max_rows`` random rows
    when there are more.
    """
    n_rows = int(matrix.shape[0]) if matrix is not None else 0
    if matrix is None or n_rows == 0 or matrix.shape[1] == 0:
        return MatrixStats("empty", 0.0, 0.0, 0, 0, True, 0, n_rows)
    in_memory = sp.issparse(matrix) or isinstance(matrix, np.ndarray)
    if n_rows > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))
        sample = _values_of(matrix[rows])
    else:
        rows = np.arange(n_rows)
        sample = _values_of(matrix[:] if not in_memory else matrix)
    n_negative = n_non_finite = 0
    # Implicit zeros of a sparse matrix are values too.
    lo = 0.0 if sp.issparse(matrix) and matrix.nnz < n_rows * matrix.shape[1] else np.inf
    hi = -np.inf
    for values in _chunks(matrix) if in_memory else (sample,):
        finite = np.isfinite(values)
        if not finite.all():
            n_non_finite += int(values.size - finite.sum())
            values = values[finite]
        if values.size:
            n_negative += int((values < 0).sum())
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    sample = sample[np.isfinite(sample)]
    nonzero = sample[sample != 0]
    integer = bool(np.all(nonzero == np.rint(nonzero)))
    if not np.isfinite(lo):
        lo = hi = 0.0
    kind: XKind
    if n_non_finite:
        kind = "non_finite"
    elif n_negative:
        kind = "negative"
    elif hi == 0:
        kind = "empty"
    elif integer:
        kind = "counts"
    elif float(nonzero.max(initial=0.0)) <= LOG_MAX:
        kind = "log_normalized"
    else:
        kind = "not_log"
    return MatrixStats(kind, lo, hi, n_negative, n_non_finite, integer, len(rows), n_rows)


# --- checks ----------------------------------------------------------------------------------


def _value_problems(stats: MatrixStats, where: str) -> list[Problem]:
    if stats.kind == "non_finite":
        return [
            Problem(
                code="non_finite",
                what=f"{stats.n_non_finite} value(s) are NaN or infinite",
                where=where,
                fix="replace them (e.g. X.data[~np.isfinite(X.data)] = 0) or recompute this "
                "matrix from the raw counts",
            )
        ]
    if stats.kind == "negative":
        return [
            Problem(
                code="negative_values",
                what=f"{stats.n_negative} value(s) are negative (min {stats.min:.4g}); this looks "
                "scaled or batch-corrected, not counts or log-normalised expression",
                where=where,
                fix="give celltwin raw counts or log1p-normalised values (before sc.pp.scale or "
                "regression), e.g. from adata.raw or layers['counts']",
            )
        ]
    return []


def _x_problems(x: Any, *, counts_ok: bool) -> list[Problem]:
    stats = matrix_stats(x)
    problems = _value_problems(stats, "X")
    if stats.kind == "counts" and not counts_ok:
        problems.append(
            Problem(
                code="counts_in_x",
                what="X holds raw counts where celltwin expects log-normalised values",
                where=f"X: {stats.describe()}",
                fix="run celltwin.pp.log_normalize(adata) (it keeps the counts in "
                "layers['counts']), or read the file with celltwin.io.read, which does it",
            )
        )
    if stats.kind == "not_log":
        problems.append(
            Problem(
                code="not_log",
                what="X holds non-integer values too large to be log-normalised: normalised but "
                "not log-transformed, or corrected counts",
                where=f"X: {stats.describe()}",
                fix="pass raw counts (celltwin normalises them), or apply np.log1p to "
                "normalised values; round corrected counts to integers (np.rint)",
            )
        )
    return problems


def _counts_problems(counts: Any, x: Any, *, require_counts: bool) -> list[Problem]:
    where = f"layers[{COUNTS_LAYER!r}]"
    if counts is None:
        if not require_counts:
            return []
        stats = matrix_stats(x)
        if stats.kind == "counts":
            return []
        return [
            Problem(
                code="counts_required",
                what="raw counts are required but there is no counts layer, and X holds "
                + ("log-normalised values" if stats.kind == "log_normalized" else "no counts"),
                where=f"{where} missing; X: {stats.describe()}",
                fix="read the raw-count version of this dataset (counts cannot be recovered from "
                "log data), or use a method that works on log-normalised data",
            )
        ]
    stats = matrix_stats(counts)
    problems = _value_problems(stats, where)
    if stats.kind == "log_normalized":
        problems.append(
            Problem(
                code="log_as_counts",
                what="the counts layer holds log-normalised values, not counts",
                where=f"{where}: {stats.describe()}",
                fix="put the raw integer counts in layers['counts'], or delete the layer "
                "(del adata.layers['counts']) so celltwin does not take log data for counts",
            )
        )
    elif stats.kind == "not_log":
        problems.append(
            Problem(
                code="non_integer_counts",
                what="the counts layer holds non-integer values",
                where=f"{where}: {stats.describe()}",
                fix="store raw integer UMI counts there; round corrected counts with np.rint "
                "if that is what they are",
            )
        )
    return problems


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
    types = set(obs[PERTURBATION_TYPE].dropna().astype(str).unique())
    unknown = sorted(types - set(PERTURBATION_TYPES))
    if unknown:
        problems.append(
            Problem(
                code="bad_perturbation_type",
                what="unknown perturbation type(s)",
                where=f"obs[{PERTURBATION_TYPE!r}] values {preview(unknown)}",
                fix=f"use one of {', '.join(PERTURBATION_TYPES)}",
            )
        )
    is_control = (obs[PERTURBATION].astype(str) == CONTROL).to_numpy()
    if not is_control.any():
        values = obs[PERTURBATION].astype(str).value_counts().index.tolist()
        problems.append(
            Problem(
                code="no_controls",
                what="no control cells",
                where=f"obs[{PERTURBATION!r}] has no {CONTROL!r}; values: {preview(values, limit=8)}",
                fix="read the data with control_label='<label of unperturbed cells>' "
                "(celltwin.io.read / to_canonical); effects are measured against controls",
            )
        )
    else:
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
                    what=f"{wrong.sum()} control cell(s) have a perturbation_type other than "
                    "'control'",
                    where=f"obs[{PERTURBATION_TYPE!r}] of cells with {PERTURBATION}={CONTROL!r}",
                    fix="set obs['perturbation_type'] to 'control' for control cells",
                )
            )
    return problems


def canonical_problems(
    adata: AnnData, *, require_counts: bool = False, counts_ok: bool = False
) -> list[Problem]:
    """Every problem of an AnnData that claims to be canonical (no adaptation is tried)."""
    problems = _obs_problems(adata.obs)
    problems += var_name_problems(pd.Index(adata.var_names), var_columns=list(adata.var.columns))
    counts = adata.layers[COUNTS_LAYER] if COUNTS_LAYER in adata.layers else None
    problems += _x_problems(adata.X, counts_ok=counts_ok)
    problems += _counts_problems(counts, adata.X, require_counts=require_counts)
    return problems


def inspect_raw(adata: AnnData) -> tuple[pd.DataFrame | None, dict[str, str], list[Problem]]:
    """Adapt obs and var of non-canonical data without touching X, collecting problems.

    Returns the canonical obs (``None`` when it could not be made), the convention record and
    the problems met; X is checked as a source (raw counts in X are fine: reading normalises them).
    """
    problems: list[Problem] = []
    obs, record = None, {}
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
        problems += _obs_problems(obs)
    problems += _x_problems(adata.X, counts_ok=True)
    counts = adata.layers[COUNTS_LAYER] if COUNTS_LAYER in adata.layers else None
    problems += _counts_problems(counts, adata.X, require_counts=False)
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
        problems += _counts_problems(None, adata.X, require_counts=True)
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
