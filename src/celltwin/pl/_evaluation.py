"""An evaluation as a page: the HTML report of :func:`celltwin.eval.evaluate`'s result.

:mod:`celltwin.eval` returns tables (:class:`~celltwin.eval.Evaluation`); this module renders
them (:func:`evaluation_report`) and writes them with the report (:func:`write_evaluation`, the
files of ``celltwin evaluate``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .._progress import timed
from ..eval import Evaluation, Verdict, verdict
from ._headline import headline
from ._report import render_report
from ._report_tables import arrow

__all__ = [
    "REPORT_FILE",
    "evaluation_notes",
    "evaluation_report",
    "evaluation_text",
    "write_evaluation",
]

#: File name of the HTML report next to an evaluation's tables.
REPORT_FILE = "report.html"


def evaluation_notes(result: Evaluation) -> list[str]:
    """Lines shown under the report's title: the VCC score, what was scored, baselines,
    ceiling, the evaluation's notes and the metrics not computed (with the reason)."""
    params = result.params
    notes = []
    if "vcc_score" in result.scores:
        notes.append(f"VCC score (vs the mean baseline): {result.scores['vcc_score']:.4f}")
    n, contexts = params.get("n_perturbations"), params.get("contexts", [])
    if n is not None:
        notes.append(f"{n} perturbations in {len(contexts)} context(s): {', '.join(contexts)}")
    notes += [f"baseline {k}: {v}" for k, v in params.get("baselines", {}).items()]
    if result.ceiling:
        notes.append(
            f"ceiling: the truth predicting itself, {params.get('n_repeats')} random "
            "split halves at half depth (n/2 cells a side)"
        )
    notes += [*params.get("notes", [])]
    notes += [f"{name} not computed: {why}" for name, why in result.skipped.items()]
    return notes


def evaluation_report(result: Evaluation, *, title: str | None = None) -> str:
    """The self-contained HTML report of an evaluation (see :func:`render_report`).

    It opens with the verdict (:func:`celltwin.eval.verdict`: the model against the best
    baseline and the noise ceiling on the headline metrics); its note names every metric on
    which the model scores above the ceiling.

    Parameters
    ----------
    result
        As :func:`celltwin.eval.evaluate` returns it.
    title
        Page title; default ``"celltwin evaluation: <model>"``.
    """
    model = str(result.params.get("model") or "prediction")
    verdicts, shown = _verdicts(result)
    return render_report(
        {model: result.tables()},
        title=title or f"celltwin evaluation: {model}",
        notes=evaluation_notes(result),
        verdicts=verdicts,
        shown=shown,
    )


def _verdicts(result: Evaluation) -> tuple[list[Verdict], int]:
    """The headline metrics' verdicts, then every other metric's (for the ceiling note), and
    how many are the headline's."""
    first = verdict(result)
    names = {v.metric for v in first}
    rest = verdict(result, metrics=[m for m in result.summary if m not in names])
    return [*first, *rest], len(first)


def write_evaluation(
    result: Evaluation, path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write an evaluation's tables and its HTML report into directory ``path``.

    The files of :meth:`celltwin.eval.Evaluation.write` plus ``report.html``
    (:func:`evaluation_report`), all or none: a failure leaves ``path`` as it was.

    Returns
    -------
    Path
        The directory written.
    """
    with timed("report and tables"):
        report = evaluation_report(result, title=title)
        return result.write(path, extra_files={REPORT_FILE: report})


def evaluation_text(
    result: Evaluation, *, report: str | os.PathLike[str] | None = None, digits: int = 3
) -> str:
    """An evaluation for a terminal: the verdict first (:func:`headline`), then the summary.

    Parameters
    ----------
    result
        As :func:`celltwin.eval.evaluate` returns it.
    report
        Path of the HTML report, named after the verdict.
    digits
        Decimals of the summary table.

    Returns
    -------
    str
        The headline, then one row per metric (``↑`` higher is better, ``↓`` lower): the
        model's mean, median, CI and n, each baseline's and the ceiling's mean.
    """
    table = result.summary_frame()
    higher = table.pop("higher_is_better")
    table.index = [
        f"{name} {arrow(h if isinstance(h, bool) else None)}".strip()
        for name, h in zip(table.index, higher, strict=True)
    ]
    table.index.name = "metric"
    table["n"] = table["n"].astype(int)
    table = table.rename(
        columns=lambda c: (
            f"{c.removeprefix('baseline_')} baseline" if c.startswith("baseline_") else c
        )
    )
    body = table.to_string(float_format=lambda v: f"{v:.{digits}f}", na_rep="–")
    verdicts, shown = _verdicts(result)
    head = headline(verdicts, report=report, shown=shown)
    return f"{head}\n\nAll metrics (mean over perturbations; baselines and ceiling: means):\n{body}"
