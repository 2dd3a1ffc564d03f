"""`celltwin split` and `celltwin info` say what a split did."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from celltwin._keys import SPLIT, TEST, UNS_KEY, VAL
from celltwin.cli import app

runner = CliRunner()


def _prepared(tmp_path: Path) -> Path:
    """Canonical data of 6 perturbations in two cell lines (via `celltwin prepare`)."""
    targets = ["non-targeting"] * 6 + [
        g for g in ("A1", "B2", "C3", "D4", "E5", "F6") for _ in "xyz"
    ]
    obs = pd.DataFrame(
        {"target_gene": targets * 2, "cell_line": ["K562"] * 24 + ["RPE1"] * 24},
        index=[f"c{i}" for i in range(48)],
    )
    x = np.random.default_rng(0).poisson(2.0, size=(48, 10)).astype(np.float32) + 1
    raw = ad.AnnData(x, obs=obs)
    raw.var_names = [f"G{i}" for i in range(10)]
    raw.write_h5ad(tmp_path / "raw.h5ad")
    out = tmp_path / "prepared.h5ad"
    result = runner.invoke(app, ["prepare", str(tmp_path / "raw.h5ad"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_split_with_only_test_has_no_val_and_prints_counts(tmp_path: Path) -> None:
    out = tmp_path / "split.h5ad"
    args = ["split", str(_prepared(tmp_path)), "--out", str(out), "--test", "A1,B2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    labels = ad.read_h5ad(out).obs[SPLIT].astype(str)
    assert (labels == TEST).sum() == 12 and not (labels == VAL).any()
    text = result.output
    assert "test  12 cells; 2 perturbations: A1, B2" in text
    assert "val   none: no validation set" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["K562"] == ["18", "4", "6", "2"]  # train cells, perts; test cells, perts
    assert rows["all"] == ["36", "4", "12", "2"]


def test_split_val_only_when_asked_and_announced(tmp_path: Path) -> None:
    out = tmp_path / "split.h5ad"
    args = ["split", str(_prepared(tmp_path)), "--out", str(out), "--test", "A1"]
    result = runner.invoke(app, [*args, "--val-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    adata = ad.read_h5ad(out)
    assert (adata.obs[SPLIT].astype(str) == VAL).sum() == 6
    assert adata.uns[UNS_KEY]["splits"][SPLIT]["n_cells"][VAL] == 6
    assert "val   6 cells; 1 perturbation:" in result.output
    assert "fit learns from train only" in result.output


def test_split_help_shows_the_defaults() -> None:
    result = runner.invoke(app, ["split", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "[default: 0: no validation set]" in text
    assert "[default: 0.2]" in text


def test_info_describes_the_split(tmp_path: Path) -> None:
    out = tmp_path / "split.h5ad"
    args = ["split", str(_prepared(tmp_path)), "--out", str(out), "--strategy", "contexts"]
    assert runner.invoke(app, [*args, "--test", "RPE1", "--seed", "3"]).exit_code == 0
    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0, result.output
    assert "split 'split' (contexts, seed 3)" in result.output
    assert "test  18 cells of 6 perturbations; 1 context: RPE1" in result.output
    assert "val   none" in result.output


def test_split_option_a_strategy_lacks_is_a_message(tmp_path: Path) -> None:
    out = tmp_path / "split.h5ad"
    args = ["split", str(_prepared(tmp_path)), "--out", str(out), "--strategy", "contexts"]
    result = runner.invoke(app, [*args, "--test", "RPE1", "--val-fraction", "0.1"])
    assert result.exit_code == 2
    assert "no option val_fraction (--val-fraction)" in result.output
    assert "Traceback" not in result.output and not out.exists()
