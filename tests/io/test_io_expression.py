"""The one check of expression values: io, the models and the evaluation share it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from celltwin import io


def _log_values(n_cells: int = 50, n_genes: int = 20, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.log1p(
        rng.gamma(1.0, 20.0, size=(n_cells, n_genes)) * (rng.random((n_cells, n_genes)) < 0.5)
    )


@pytest.mark.parametrize("as_sparse", [False, True])
def test_log_normalised_values_have_no_problem(as_sparse: bool) -> None:
    x = _log_values()
    x = sp.csr_matrix(x) if as_sparse else x
    assert io.expression_problems(x) == []
    io.check_expression(x, where="model.fit")


@pytest.mark.parametrize("x", [np.zeros((0, 5)), np.zeros((4, 0)), np.zeros((3, 3))])
def test_empty_or_all_zero_matrices_have_no_problem(x: np.ndarray) -> None:
    assert io.expression_problems(x) == []


def _codes(problems: list[io.Problem]) -> list[str]:
    assert all(p.severity == "error" for p in problems)
    return [p.code for p in problems]


def test_each_kind_of_bad_values_has_its_code() -> None:
    x = _log_values()
    nan = x.copy()
    nan[3, 4] = np.nan
    negative = x - 1.0
    counts = np.rint(np.expm1(x))
    not_log = x.copy()
    not_log[0, 0] = io.LOG_MAX + 5.0
    assert _codes(io.expression_problems(None)) == ["no_x"]
    assert _codes(io.expression_problems(nan)) == ["non_finite"]
    assert _codes(io.expression_problems(negative)) == ["negative_values"]
    assert _codes(io.expression_problems(counts)) == ["counts_in_x"]
    assert _codes(io.expression_problems(not_log)) == ["not_log"]
    # What a caller may allow is not reported.
    assert io.expression_problems(negative, allow_negative=True) == []
    assert io.expression_problems(counts, counts_ok=True) == []
    # Allowing negative values does not hide NaN.
    assert _codes(io.expression_problems(nan - 1.0, allow_negative=True)) == ["non_finite"]


def test_the_role_names_the_matrix_in_every_message() -> None:
    counts = np.rint(np.expm1(_log_values()))
    (problem,) = io.expression_problems(counts, role="truth.X")
    assert problem.what.startswith("truth.X holds raw counts")
    assert problem.where.startswith("truth.X: integer values in [0, ")
    assert "celltwin.pp.log_normalize" in problem.fix
    (missing,) = io.expression_problems(None, role="pred.X")
    assert missing.message == "pred.X is None [pred.X]. Fix: store log1p(CP10k) values in pred.X"


def test_io_messages_are_unchanged_for_x() -> None:
    (problem,) = io.expression_problems(np.rint(np.expm1(_log_values())))
    assert problem.what == "X holds raw counts where celltwin expects log-normalised values"
    x = _log_values()
    x[0, 0] = 30.0
    (problem,) = io.expression_problems(x)
    assert problem.code == "not_log"
    assert problem.what.startswith("X holds non-integer values too large to be log-normalised")
    assert problem.where == "X: non-integer values in [0, 30]"


def test_check_expression_raises_a_value_error_naming_caller_values_and_fix() -> None:
    x = _log_values()
    x[1, 1] = 30.0
    with pytest.raises(ValueError, match=r"^mean\.fit: X holds non-integer values") as err:
        io.check_expression(x, where="mean.fit")
    assert isinstance(err.value, io.ValidationError)
    (problem,) = err.value.problems
    assert problem.code == "not_log"
    assert "[X: non-integer values in [0, 30]]" in str(err.value)
    assert "Fix: " in str(err.value)
    # The same matrix fails io's own check: one limit for everyone.
    assert _codes(io.expression_problems(x)) == ["not_log"]


def test_check_expression_lists_every_problem_and_honours_the_options() -> None:
    x = _log_values() - 1.0
    with pytest.raises(io.ValidationError, match="negative"):
        io.check_expression(sp.csr_matrix(x), where="m.predict")
    io.check_expression(x, where="m.predict", allow_negative=True)
    counts = np.rint(np.expm1(_log_values()))
    io.check_expression(counts, where="m.fit", counts_ok=True)
    with pytest.raises(io.ValidationError, match=r"m\.fit: X is None"):
        io.check_expression(None, where="m.fit")
