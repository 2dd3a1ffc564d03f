"""An evaluation rendered and written by celltwin.pl: the files of `celltwin evaluate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from celltwin.eval import Evaluation, Verdict, evaluate
from celltwin.pl import (
    evaluation_notes,
    evaluation_report,
    evaluation_text,
    headline,
    headline_html,
    write_evaluation,
)

FILES = {
    "metrics.csv",
    "summary.json",
    "report.html",
    "baselines.csv",
    "ceiling.csv",
    "aggregate.csv",
    "top_de_deltas.csv",
}


@pytest.fixture(scope="module")
def result(cells) -> Evaluation:
    truth, pred, train = cells(0, 0.0), cells(1, 0.1), cells(2, 0.0)
    return evaluate(truth, pred, train=train, metrics=["mae", "des", "pds"], n_repeats=1, n_boot=20)


def test_report_is_one_page_with_the_notes(result: Evaluation) -> None:
    html = evaluation_report(result, title="my <run>")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "<title>my &lt;run&gt;</title>" in html
    notes = evaluation_notes(result)
    assert notes[0].startswith("VCC score (vs the mean baseline): ")
    assert any(n.startswith("ceiling: the truth predicting itself, 1 random") for n in notes)
    assert "celltwin evaluation: prediction" in evaluation_report(result)


def test_write_evaluation_writes_the_tables_and_the_report(result, tmp_path: Path) -> None:
    out = write_evaluation(result, tmp_path / "eval", title="run")
    assert {p.name for p in out.iterdir()} == FILES
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<title>run</title>" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["pds"]["mean"] == pytest.approx(result.summary["pds"]["mean"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_failed_report_writes_nothing(result, tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("report failed")

    monkeypatch.setattr("celltwin.pl._evaluation.render_report", broken)
    with pytest.raises(RuntimeError, match="report failed"):
        write_evaluation(result, tmp_path / "eval")
    assert list(tmp_path.iterdir()) == []


def test_text_puts_the_verdict_first_and_rounds_the_table(result: Evaluation) -> None:
    text = evaluation_text(result, report="out/report.html")
    first, *rest = text.splitlines()
    assert first.startswith("Verdict: prediction vs the best baseline and the noise ceiling")
    assert "  des (higher is better): " in text and "the best baseline, mean (" in text
    assert rest.index("Report: out/report.html") < rest.index(
        next(line for line in rest if line.startswith("All metrics"))
    )
    table = text.split("All metrics", 1)[1]
    assert re.search(r"mae ↓ +\d\.\d{3} ", table) and not re.search(r"\d\.\d{4}", table)
    assert max(len(line) for line in text.splitlines()) <= 100


def test_headline_says_what_scoring_above_the_ceiling_means() -> None:
    above = Verdict("m", "spearman", True, 1, 0.468, np.nan, np.nan, ceiling_mean=0.386)
    text = headline([above], report="r.html")
    assert "spearman (higher is better): 0.468 (1 perturbation, no CI)" in text
    assert "above the noise ceiling on spearman (0.468 vs 0.386)" in text
    assert "cannot tell the model from a replicate" in text.replace("\n  ", " ")
    assert text.endswith("Report: r.html")
    assert "cannot tell the model" in headline_html([above])


def test_headline_writes_out_the_first_metrics_and_notes_the_ceiling_on_all() -> None:
    first = Verdict("m", "pearson_delta", True, 5, 0.5, 0.4, 0.6, ceiling_mean=0.7)
    other = Verdict("m", "spearman", True, 5, 0.468, 0.4, 0.5, ceiling_mean=0.386)
    text = headline([first, other], shown=1)
    assert "pearson_delta (higher is better): 0.500 [0.400, 0.600]" in text
    assert "spearman (higher" not in text and "on spearman (0.468 vs 0.386)" in text
