"""``celltwin evaluate`` and ``celltwin benchmark`` print the verdict first, then the tables."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from celltwin._keys import CONTROL, PERTURBATION
from celltwin.cli import app
from celltwin.simulate import simulate

runner = CliRunner()


def test_evaluate_prints_the_verdict_then_a_rounded_table(tmp_path: Path) -> None:
    truth = simulate(n_genes=40, n_tfs=5, n_perturbations=4, combinations=0,
                     cells_per_condition=20, seed=0).adata  # fmt: skip
    truth.X = truth.X.toarray() if hasattr(truth.X, "toarray") else truth.X
    pred = truth.copy()
    perturbed = (pred.obs[PERTURBATION] != CONTROL).to_numpy()
    noise = np.random.default_rng(1).normal(0, 0.05, pred.X[perturbed].shape)
    pred.X[perturbed] = np.clip(np.asarray(pred.X[perturbed]) + noise, 0, None)
    truth.write_h5ad(tmp_path / "truth.h5ad")
    pred.write_h5ad(tmp_path / "pred.h5ad")
    out = tmp_path / "ev"
    args = ["evaluate", "--truth", str(tmp_path / "truth.h5ad"), "--pred"]
    result = runner.invoke(app, [*args, str(tmp_path / "pred.h5ad"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # what celltwin logs while reading goes to stderr
    assert lines[0].startswith("Verdict: prediction vs the best baseline and the noise ceiling")
    assert re.search(r"(BETTER|WORSE|TIE) (than|with) the best baseline", result.output)
    assert f"Report: {out / 'report.html'}" in lines
    table = result.stdout.split("All metrics", 1)[1]
    assert "pearson_delta ↑" in table and not re.search(r"\d\.\d{4}", table)


def test_benchmark_prints_the_verdict_before_the_leaderboard(tmp_path: Path) -> None:
    args = ["benchmark", "sim-doses", "--models", "mean,nearest_dose", "--folds", "highest"]
    args += ["--option", "smoke=true", "--no-isolate", "--out", str(tmp_path / "b")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    printed = result.stdout  # progress bars go to stderr
    assert printed.startswith("Verdict: nearest_dose vs the best baseline")
    assert printed.index("Report: ") < printed.index("## sim-doses")
