"""Screen requests: checked when submitted, run by the screen engine on a worker thread.

:func:`screen_job` turns a request into a :class:`ScreenJob` (every name checked against the
model, candidates counted against the limit, the objective built once so that bad parameters
are refused with 422 before anything is queued); :func:`run_screen` is the default runner of
the job queue (:class:`._jobs.JobManager`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..screen import OBJECTIVES, concat, genes, get_objective, pairs, screen
from ._state import ApiError, ServedModel

__all__ = ["ScreenJob", "run_screen", "screen_job"]

#: File-like suffixes refused in objective parameters: no file path comes from a request.
_PATH_SUFFIXES = (".csv", ".tsv", ".txt", ".h5ad", ".parquet", ".gmt", ".json", ".gz", ".npz")


@dataclass(frozen=True)
class ScreenJob:
    """A checked screen request: canonical singles and pair members, the objective's name and
    parameters, and how many rows the job status returns."""

    context: str
    singles: tuple[str, ...]
    pair_members: tuple[str, ...]
    objective: str
    params: Mapping[str, Any]
    top: int

    @property
    def n_candidates(self) -> int:
        n = len(self.pair_members)
        return len(self.singles) + n * (n - 1) // 2


def _check_params(params: Mapping[str, Any]) -> None:
    """Refuse file paths: a ``query`` that is not a ``{gene: score}`` object (a string would be
    read as a query file) and any string that looks like a path, anywhere in ``params``."""
    query = params.get("query")
    if query is not None and not (
        isinstance(query, Mapping)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in query.values())
    ):
        raise ApiError(
            422, "objective parameter 'query' must be an object {gene: score} (up: positive); "
            "the server reads no query file", field="objective.params",
        )  # fmt: skip
    stack: list[Any] = [params]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, str) and (
            "/" in value or "\\" in value or value.lower().endswith(_PATH_SUFFIXES)
        ):
            raise ApiError(
                422, f"objective parameter {value!r} looks like a file path; the server reads "
                "no file named by a request. Fix: send the values themselves (e.g. a "
                "{gene: score} object)", field="objective.params",
            )  # fmt: skip


def check_objective(name: str, params: Mapping[str, Any]) -> None:
    """Build the objective once so that an unknown name or bad parameters give 422 now."""
    known = sorted(OBJECTIVES)
    if name not in OBJECTIVES:
        raise ApiError(422, f"unknown objective {name!r}", field="objective.name", allowed=known)
    try:
        get_objective(name, **params)
    except (TypeError, ValueError, KeyError) as err:
        raise ApiError(422, f"objective {name!r}: {err}", field="objective.params") from None


def screen_job(
    state: ServedModel,
    *,
    context: str,
    genes: Sequence[str],
    all_genes: bool,
    pairs: Sequence[str],
    objective: str,
    params: Mapping[str, Any],
    top: int,
    max_candidates: int,
    check: Callable[[str, Mapping[str, Any]], None] | None = check_objective,
) -> ScreenJob:
    """A checked :class:`ScreenJob` (raises :class:`ApiError` 422 for any bad part)."""
    context = state.check_context(context)
    n_named = len(genes) + (len(state.universe()) if all_genes else 0) + len(pairs)
    if n_named > max_candidates:
        raise ApiError(422, f"{n_named} candidates named; at most {max_candidates}",
                       field="candidates")  # fmt: skip
    singles = [state.canonical(g, field="candidates.genes") for g in genes]
    if all_genes:
        singles += state.universe()
    members = sorted({state.canonical(g, field="candidates.pairs") for g in pairs})
    job = ScreenJob(
        context, tuple(dict.fromkeys(singles)), tuple(members), objective, dict(params), top
    )
    if job.n_candidates == 0:
        raise ApiError(422, "no candidates: give genes, all=true or pairs", field="candidates")
    if job.n_candidates > max_candidates:
        raise ApiError(
            422, f"{job.n_candidates} candidates; at most {max_candidates} per screen. Fix: "
            "fewer genes or pair members", field="candidates",
        )  # fmt: skip
    _check_params(params)
    if check is not None:
        check(objective, params)
    return job


def batch_size(n_candidates: int) -> int:
    """About ten batches, so a job's progress moves, but no batch under 256 candidates (each
    batch pays a fixed set-up in the model) or over the engine's default 1,024."""
    return int(min(max(-(-n_candidates // 10), 256), 1024))


def run_screen(
    state: ServedModel, job: ScreenJob, progress: Callable[[float], None]
) -> pd.DataFrame:
    """Run ``job`` with :func:`celltwin.screen.screen` under the model lock; the ranked table.

    The engine reports each finished batch (``on_batch``): the job's progress moves with it, and
    a cancelled job stops after the batch that is running (``progress`` raises).
    """
    progress(0.0)
    parts = []
    if job.singles:
        parts.append(genes(list(job.singles)))
    if len(job.pair_members) > 1:
        parts.append(pairs(list(job.pair_members)))
    candidates = parts[0] if len(parts) == 1 else concat(*parts)
    objective = get_objective(job.objective, **job.params)
    with state.lock:
        progress(0.0)  # raises if the job was cancelled while it waited for the lock
        result = screen(
            state.model, state.controls, candidates=candidates, objective=objective,
            context=job.context, top=job.top, progress=False,
            batch_size=batch_size(len(candidates.table)),
            on_batch=lambda done, total: progress(0.99 * done / total),
        )  # fmt: skip
    progress(1.0)
    return result.table
