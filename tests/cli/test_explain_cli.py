"""`celltwin explain` (issue 19, point 6): files written, bad inputs as one `error:` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltwin._settings import shared_dir
from celltwin.cli import app

pytest.importorskip("decoupler")
pytestmark = pytest.mark.skipif(
    not (shared_dir() / "priors" / "dorothea_human.tsv.gz").is_file(), reason="needs ../shared"
)
runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """Genes x conditions: STAT1 and IRF1 knockouts lowering interferon genes."""
    from celltwin.priors import read_gene_sets

    genes = sorted({g for v in read_gene_sets(name="hallmark").values() for g in v})[:800]
    genes = sorted(set(genes) | {"STAT1", "IRF1", "IRF9", "GBP1", "CXCL10", "IFIT1", "ISG15"})
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(scale=0.05, size=(len(genes), 2)), index=genes,
                         columns=["K562|STAT1", "K562|IRF1"])  # fmt: skip
    frame.loc[["IRF1", "GBP1", "CXCL10", "IFIT1", "ISG15"], "K562|STAT1"] -= 1.0
    frame.index.name = "gene"
    path = tmp_path_factory.mktemp("cli_explain") / "effects.csv"
    frame.to_csv(path)
    return path


def test_explain_writes_tables_and_report(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "why"
    out.mkdir()
    (out / "old.txt").write_text("an earlier run")
    args = ["explain", str(table), "--out", str(out), "--network", "dorothea"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "error:" in refused.output and "--force" in refused.output
    done = runner.invoke(app, [*args, "--force"])
    assert done.exit_code == 0, done.output
    assert "read as effects (2 condition(s)" in done.output and f"wrote {out}" in done.output
    assert (out / "report.html").is_file() and (out / "paths.csv").is_file()
    paths = pd.read_csv(out / "paths.csv")
    hit = paths[(paths["condition"] == "K562|STAT1") & (paths["gene"] == "IRF1")]
    assert hit["path"].iloc[0] == "STAT1 > IRF1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gene-sets", "halmark"], "unknown --gene-sets halmark"),
        (["--network", "dorothee"], "unknown --network dorothee"),
        (["--top-genes", "0"], "--top-genes must be >= 1"),
        (["--model", "nomodel"], "no model directory at nomodel"),
    ],
)
def test_bad_options_are_one_error_line(table: Path, tmp_path: Path, extra, message) -> None:
    done = runner.invoke(app, ["explain", str(table), "--out", str(tmp_path / "o"), *extra])
    assert done.exit_code == 2 and message in done.output
    assert "Traceback" not in done.output and not (tmp_path / "o").exists()


def test_bad_inputs_are_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("gene,a\nSTAT1,x\n")
    (tmp_path / "notes.txt2").write_text("hello")
    for name, message in (("bad.csv", "non-numeric column"), ("notes.txt2", "cannot read"),
                          ("missing.csv", "not found")):  # fmt: skip
        done = runner.invoke(app, ["explain", str(tmp_path / name), "--out", str(tmp_path / "o")])
        assert done.exit_code == 2 and "error:" in done.output and message in done.output
        assert "Traceback" not in done.output
