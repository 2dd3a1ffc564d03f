"""What an expression matrix holds, and its problems: the one validation of expression values.

:func:`matrix_stats` tells counts from log-normalised values (and from negative, non-finite or
empty matrices); :func:`expression_problems` turns that into a list of
:class:`~celltwin.io.Problem` and :func:`check_expression` raises them. :func:`celltwin.io.check`
and :func:`celltwin.io.validate`, the models and the evaluation all use these, so a matrix one
accepts the others accept too.

Matrix checks are cheap on large data: sparse matrices are checked through their stored values
(``.data``) only, and the counts-or-log heuristic looks at a sample of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._keys import COUNTS_LAYER
from ._problems import Problem, ValidationError, errors

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


# --- problems --------------------------------------------------------------------------------


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


# What a kind of values (MatrixStats.kind) means where other values are expected: the problem's
# code, what is wrong ("{role}" is the matrix) and the fix.
_NOT_EXPRESSION: dict[str, tuple[str, str, str]] = {
    "counts": (
        "counts_in_x",
        "{role} holds raw counts where celltwin expects log-normalised values",
        "run celltwin.pp.log_normalize(adata) (it keeps the counts in layers['counts']), or read "
        "the file with celltwin.io.read, which does it",
    ),
    "not_log": (
        "not_log",
        "{role} holds non-integer values too large to be log-normalised: normalised but not "
        "log-transformed, or corrected counts",
        "pass raw counts (celltwin normalises them), or apply np.log1p to normalised values; "
        "round corrected counts to integers (np.rint)",
    ),
}
_NOT_COUNTS: dict[str, tuple[str, str, str]] = {
    "log_normalized": (
        "log_as_counts",
        "the counts layer holds log-normalised values, not counts",
        "put the raw integer counts in layers['counts'], or delete the layer "
        "(del adata.layers['counts']) so celltwin does not take log data for counts",
    ),
    "not_log": (
        "non_integer_counts",
        "the counts layer holds non-integer values",
        "store raw integer UMI counts there; round corrected counts with np.rint if that is "
        "what they are",
    ),
}


def _kind_problem(message: tuple[str, str, str], stats: MatrixStats, role: str) -> Problem:
    code, what, fix = message
    return Problem(
        code=code, what=what.format(role=role), where=f"{role}: {stats.describe()}", fix=fix
    )


def expression_problems(
    x: Any, *, role: str = "X", counts_ok: bool = False, allow_negative: bool = False
) -> list[Problem]:
    """The problems of a cells x genes matrix that should hold log1p-normalised expression.

    Each problem is an error (severity ``"error"``) with one of these codes:

    ``no_x``
        ``x`` is ``None``.
    ``non_finite``
        NaN or infinite values (counted over every stored value).
    ``negative_values``
        Negative values (scaled or batch-corrected data); not reported with ``allow_negative``.
    ``counts_in_x``
        Non-negative whole numbers: raw counts; not reported with ``counts_ok``.
    ``not_log``
        Non-negative non-integer values above ``LOG_MAX`` (25): normalised but not
        log-transformed, or corrected counts.

    A matrix without rows, genes or non-zero values has no problem. The kind of values is decided
    by :func:`matrix_stats` (on a sample of 2,000 rows for the integer and ``LOG_MAX`` tests).

    Parameters
    ----------
    x
        Dense, sparse or backed matrix.
    role
        Name of the matrix in the messages (``"X"``, ``"truth.X"``, ``"layers['counts']"``).
    counts_ok
        Raw counts are fine here (a file about to be normalised).
    allow_negative
        Negative values are fine here (a model's prediction may undershoot zero).

    Returns
    -------
    list[Problem]
        Empty when ``x`` holds log-normalised expression.
    """
    if x is None:
        return [Problem("no_x", f"{role} is None", role, f"store log1p(CP10k) values in {role}")]
    stats = matrix_stats(x)
    if stats.kind == "negative" and allow_negative:
        return []
    problems = _value_problems(stats, role)
    if stats.kind in _NOT_EXPRESSION and not (stats.kind == "counts" and counts_ok):
        problems.append(_kind_problem(_NOT_EXPRESSION[stats.kind], stats, role))
    return problems


def check_expression(
    x: Any,
    *,
    where: str,
    role: str = "X",
    counts_ok: bool = False,
    allow_negative: bool = False,
) -> None:
    """Raise :class:`~celltwin.io.ValidationError` unless ``x`` holds log1p-normalised expression.

    The check of :func:`expression_problems`, for code that needs valid values to go on (an
    estimator's ``fit`` and ``predict``).

    Parameters
    ----------
    x
        Dense, sparse or backed matrix.
    where
        The caller, put before each message (``"mean.fit"``).
    role, counts_ok, allow_negative
        As for :func:`expression_problems`.

    Raises
    ------
    ValidationError
        A :class:`ValueError` listing every problem, each naming the matrix, its values and the
        fix: ``"mean.fit: X holds raw counts where celltwin expects log-normalised values
        [X: integer values in [0, 12]]. Fix: run celltwin.pp.log_normalize(adata) ..."``.
    """
    found = errors(
        expression_problems(x, role=role, counts_ok=counts_ok, allow_negative=allow_negative)
    )
    if found:
        raise ValidationError([replace(p, what=f"{where}: {p.what}") for p in found])


def counts_layer_problems(counts: Any, x: Any, *, require_counts: bool) -> list[Problem]:
    """Problems of the counts layer (``None`` when absent), judged beside X."""
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
    if stats.kind in _NOT_COUNTS:
        problems.append(_kind_problem(_NOT_COUNTS[stats.kind], stats, where))
    return problems
