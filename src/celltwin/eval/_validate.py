"""Checks of evaluate's inputs: every problem found, reported at once (:class:`ValidationError`).

Each check returns :class:`~celltwin.io.Problem` records naming the key, the value and the fix;
:func:`input_problems` gathers those of the matrices, obs columns and genes, and
:func:`match_units` pairs the truth's and the prediction's units context by context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from numpy.typing import NDArray

from .._keys import CONTEXT, CONTROL, PERTURBATION, UNS_KEY
from ..io import Problem, ValidationError, expression_problems
from ._units import preview, show_unit

__all__ = [
    "Match",
    "check_kind",
    "input_problems",
    "match_units",
    "pairing_problems",
    "prediction_kind",
]


def check_kind(pred: AnnData) -> str:
    """The prediction's kind (``cells`` or ``pseudobulk``); a ValidationError for any other."""
    kind = prediction_kind(pred)
    if kind not in ("cells", "pseudobulk"):
        raise ValidationError(
            [
                Problem(
                    "prediction_kind",
                    f"the prediction is of kind {kind!r}; evaluate scores expression "
                    "predictions (cells or pseudobulk)",
                    "pred.uns['celltwin']['prediction']['kind']",
                    "score rank signatures with the rank metrics (celltwin.eval.spearman, "
                    "topk_overlap) instead",
                )
            ]
        )
    return kind


def input_problems(
    truth: AnnData, pred: AnnData, train: AnnData | None
) -> tuple[list[Problem], NDArray[np.intp], NDArray[np.intp] | None]:
    """Problems of the obs columns, genes and matrices, and the columns of ``pred`` and
    ``train`` in the truth's gene order."""
    problems = obs_problems(truth, "truth") + obs_problems(pred, "pred")
    if train is not None:
        problems += obs_problems(train, "train")
    found, pred_cols = gene_problems(truth, pred, "pred")
    problems += found
    train_cols = None
    if train is not None:
        found, train_cols = gene_problems(truth, train, "train")
        problems += found
    if truth.n_vars == 0:
        problems.append(Problem("no_genes", "truth has no genes", "truth.var", "pass expression"))
    problems += x_problems(truth, "truth", pred=False) + x_problems(pred, "pred", pred=True)
    problems += no_expression_problems(truth, "truth")
    if train is not None:
        problems += x_problems(train, "train", pred=False)
    return problems, pred_cols, train_cols


def pairing_problems(match: Match, *, allow_missing: bool) -> list[Problem]:
    """The match's problems, plus units on one side only unless ``allow_missing``."""
    problems = list(match.problems)
    if allow_missing:
        return problems
    for names, side, other in (
        (match.missing, "prediction", "truth"),
        (match.extra, "truth", "prediction"),
    ):
        if names:
            problems.append(
                Problem(
                    "missing_perturbations",
                    f"{len(names)} perturbation(s) of the {other} are absent from the {side}",
                    preview(names),
                    "predict exactly the truth's perturbations, or pass "
                    "allow_missing=True to score the shared ones only",
                )
            )
    return problems


def x_problems(adata: AnnData, role: str, *, pred: bool) -> list[Problem]:
    """The problems of ``adata.X`` as expression: io's one check (a prediction may undershoot 0)."""
    return expression_problems(adata.X, role=f"{role}.X", allow_negative=pred)


def no_expression_problems(adata: AnnData, role: str) -> list[Problem]:
    """A problem when ``adata.X`` holds no non-zero value (nothing to score against)."""
    x = adata.X
    if x is None or adata.n_obs == 0 or adata.n_vars == 0:
        return []
    values = x.data if sp.issparse(x) else np.asarray(x)
    if np.any(values != 0):
        return []
    return [
        Problem(
            "no_expression",
            f"{role} holds no expression: every value of {role}.X is 0 ({adata.n_obs} cells x "
            f"{adata.n_vars} genes)",
            f"{role}.X",
            "pass the measured cells (e.g. the file written by celltwin prepare or split), not "
            "an empty or placeholder matrix",
        )
    ]


def obs_problems(adata: AnnData, role: str) -> list[Problem]:
    missing = [k for k in (PERTURBATION, CONTEXT) if k not in adata.obs.columns]
    if not missing:
        return []
    return [
        Problem(
            "not_canonical",
            f"{role} lacks obs column(s) {missing}",
            f"{role}.obs",
            f"make it canonical with celltwin.io.to_canonical({role}) (or read the file with "
            "celltwin.io.read)",
        )
    ]


def gene_problems(
    truth: AnnData, other: AnnData, role: str
) -> tuple[list[Problem], NDArray[np.intp]]:
    """Columns of ``other`` in the truth's gene order, and problems (missing or duplicate genes)."""
    problems = []
    for adata, name in ((truth, "truth"), (other, role)):
        if not adata.var_names.is_unique:
            dup = adata.var_names[adata.var_names.duplicated()].unique().tolist()
            problems.append(
                Problem(
                    "duplicate_genes",
                    f"{name} has duplicated gene names",
                    f"{name}.var_names: {preview(dup)}",
                    f"make them unique ({name}.var_names_make_unique()) or read the file with "
                    "celltwin.io.read",
                )
            )
    if problems:
        return problems, np.empty(0, dtype=np.intp)
    positions = other.var_names.get_indexer(truth.var_names)
    missing = truth.var_names[positions < 0].tolist()
    if missing:
        problems.append(
            Problem(
                "missing_genes",
                f"{role} lacks {len(missing)} of the truth's {truth.n_vars} genes",
                f"{role}.var_names: {preview(missing)}",
                f"predict every gene of the truth, or evaluate on the shared genes: "
                f"truth[:, truth.var_names.isin({role}.var_names)]",
            )
        )
    return problems, positions


def prediction_kind(pred: AnnData) -> str:
    info = pred.uns.get(UNS_KEY, {}).get("prediction", {}) if hasattr(pred, "uns") else {}
    return str(info.get("kind", "cells")) if isinstance(info, Mapping) else "cells"


@dataclass
class Match:
    """Perturbations per context both sides have, what one side lacks, and problems found."""

    perturbations: dict[str, NDArray[np.str_]]
    missing: list[str]  # in the truth, absent from the prediction ("label (context)")
    extra: list[str]  # in the prediction, absent from the truth
    problems: list[Problem]
    pred_has_control: bool


def match_units(
    truth_units: NDArray[np.str_],
    truth_context: NDArray[np.str_],
    pred_units: NDArray[np.str_],
    pred_context: NDArray[np.str_],
) -> Match:
    pred_contexts = set(pred_context.tolist())
    pred_has_control = bool((pred_units == CONTROL).any())
    contexts = sorted(set(truth_context.tolist()))
    out = Match({}, [], [], [], pred_has_control)
    for context in contexts:
        t_units = set(truth_units[truth_context == context].tolist())
        if CONTROL not in t_units:
            out.problems.append(
                Problem(
                    "no_controls",
                    f"the truth has no control cells in context {context!r}; DE tests and "
                    "deltas are computed against them",
                    f"truth.obs[{PERTURBATION!r}] == {CONTROL!r} in context {context!r}",
                    "include that context's control cells in the truth",
                )
            )
        t_perts = t_units - {CONTROL}
        if not t_perts:
            out.problems.append(
                Problem(
                    "no_perturbations",
                    f"context {context!r} of the truth holds control cells only: nothing to score",
                    f"truth.obs[{CONTEXT!r}] == {context!r}",
                    "drop that context from the truth, or add its perturbed cells",
                )
            )
            continue
        p_units = set(pred_units[pred_context == context].tolist())
        if pred_has_control and context in pred_contexts and CONTROL not in p_units:
            out.problems.append(
                Problem(
                    "no_pred_controls",
                    f"the prediction has control cells, but none in context {context!r}",
                    f"pred.obs[{PERTURBATION!r}] == {CONTROL!r} in context {context!r}",
                    "add that context's control cells to the prediction (real controls, as the "
                    "VCC asks), or remove every control cell so the truth's are used throughout",
                )
            )
        p_perts = p_units - {CONTROL}
        out.missing += [f"{show_unit(u)} ({context})" for u in sorted(t_perts - p_perts)]
        out.extra += [f"{show_unit(u)} ({context})" for u in sorted(p_perts - t_perts)]
        out.perturbations[context] = np.array(sorted(t_perts & p_perts), dtype=str)
    out.extra += [
        f"{show_unit(u)} ({c})"
        for c in sorted(pred_contexts - set(contexts))
        for u in sorted(set(pred_units[pred_context == c].tolist()) - {CONTROL})
    ]
    return out
