"""The headline: a verdict a reader takes in at a glance, as text and as an HTML block.

Laid out from :class:`celltwin.eval.Verdict` (computed by :func:`celltwin.eval.verdict` or
:meth:`celltwin.benchmark.Leaderboard.verdict`): per metric, the model's mean with its CI, then
*better / worse / tie* against the best baseline and against the noise ceiling, with the paired
difference and its CI. Where the model scores above the ceiling, a note says what that means.
"""

from __future__ import annotations

import html
import math
import os
import textwrap
from collections.abc import Sequence

from ..eval import MIN_CI_UNITS, PairedComparison, Verdict

__all__ = ["HEADLINE_SIZE", "ceiling_notes", "headline", "headline_html"]

#: Metrics a headline writes out (the first of the verdicts it is given).
HEADLINE_SIZE = 3


def _num(value: float, *, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _interval(low: float, high: float) -> str:
    return f" [{_num(low)}, {_num(high)}]" if math.isfinite(low) and math.isfinite(high) else ""


def _units(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _difference(c: PairedComparison) -> str:
    """``+0.123 [0.050, 0.190]`` (no interval below :data:`~celltwin.eval.MIN_CI_UNITS`)."""
    text = _num(c.mean_diff, signed=True)
    if c.n >= MIN_CI_UNITS:
        text += _interval(c.ci_low, c.ci_high)
    return text


def ceiling_notes(verdicts: Sequence[Verdict]) -> list[str]:
    """One sentence per model that scores above the noise ceiling on some metrics: which, and
    what it means."""
    above: dict[str, list[str]] = {}
    for v in verdicts:
        if v.above_ceiling:
            above.setdefault(v.model, []).append(
                f"{v.metric} ({_num(v.mean)} vs {_num(v.ceiling_mean)})"
            )
    return [
        f"{model} scores above the noise ceiling on {', '.join(found)}. The ceiling is a "
        "split-half estimate (real cells predicting real cells at half depth), so it is "
        f"conservative; scoring above it means {'this metric' if len(found) == 1 else 'these metrics'} "
        "cannot tell the model from a replicate experiment."
        for model, found in above.items()
    ]


def _lines(v: Verdict, unit: str) -> list[str]:
    better = "higher is better" if v.higher_is_better else "lower is better"
    head = f"{v.metric} ({better}): {_num(v.mean)}{_interval(v.ci_low, v.ci_high)}"
    if not math.isfinite(v.ci_low):
        head += f" ({_units(v.n, unit)}, no CI)"
    lines = [head]
    if v.vs_baseline is not None:
        lines.append(
            f"  {v.against_baseline.upper()} {'with' if v.against_baseline == 'tie' else 'than'} "
            f"the best baseline, {v.baseline} "
            f"({_num(v.baseline_mean)}): {_difference(v.vs_baseline)}"
        )
    if v.vs_ceiling is not None:
        where = {"better": "ABOVE", "worse": "BELOW", "tie": "AT"}.get(v.against_ceiling, "")
        lines.append(
            f"  {where} the noise ceiling ({_num(v.ceiling_mean)}): {_difference(v.vs_ceiling)}"
        )
    return lines


def headline(
    verdicts: Sequence[Verdict],
    *,
    report: str | os.PathLike[str] | None = None,
    unit: str = "perturbation",
    shown: int = HEADLINE_SIZE,
) -> str:
    """The verdict as a few lines of plain text, for a terminal or a markdown file.

    Parameters
    ----------
    verdicts
        As :func:`celltwin.eval.verdict` returns them (one model).
    report
        Path of the HTML report, named on the last line.
    unit
        What the model's values are averaged over (``perturbation``, ``fold``).
    shown
        The first ``shown`` verdicts are written out; the note on the noise ceiling covers all.

    Returns
    -------
    str
        ``Verdict: <model> ...`` then, per metric, the model's mean [95% CI] and how it
        compares with the best baseline and the noise ceiling (paired difference [95% CI];
        *tie* when the CI includes 0), notes where it is above the ceiling, and the report.
    """
    if not verdicts:
        lines = ["Verdict: no metric has a value to judge."]
    else:
        lines = textwrap.wrap(
            f"Verdict: {verdicts[0].model} vs the best baseline and the noise ceiling "
            "(mean [95% CI]; tie: CI includes 0)",
            width=100,
            subsequent_indent="  ",
        )
        for v in verdicts[:shown]:
            lines += ["  " + line for line in _lines(v, unit)]
        for note in ceiling_notes(verdicts):
            lines += textwrap.wrap("Note: " + note, width=100, subsequent_indent="  ")
    if report is not None:
        lines.append(f"Report: {report}")
    return "\n".join(lines)


def headline_html(
    verdicts: Sequence[Verdict], *, unit: str = "perturbation", shown: int = HEADLINE_SIZE
) -> str:
    """The verdict as an HTML block (the first section of a report); empty without verdicts.

    The first ``shown`` verdicts are written out; the note on the noise ceiling covers all."""
    if not verdicts:
        return ""
    items = []
    for v in verdicts[:shown]:
        first, *rest = _lines(v, unit)
        words = "".join(
            f'<div class="{html.escape(line.split()[0].lower())}">{html.escape(line.strip())}</div>'
            for line in rest
        )
        items.append(f"<li><b>{html.escape(first)}</b>{words}</li>")
    notes = "".join(f"<p class='warn'>{html.escape(n)}</p>" for n in ceiling_notes(verdicts))
    return (
        '<div class="verdict" id="verdict"><p>'
        f"{html.escape(verdicts[0].model)} against the best baseline and the noise ceiling "
        "(mean [95% CI]; differences paired, <i>tie</i> when the CI includes 0):</p>"
        f"<ul>{''.join(items)}</ul>{notes}</div>"
    )
