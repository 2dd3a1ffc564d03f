"""`celltwin pseudobulk` and `celltwin de`: on-disk cells, here or on Dask (issue 17, point 2)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltwin.cli import app
from celltwin.eval import differential_expression
from celltwin.pp import pseudobulk
from celltwin.simulate import write_h5ad

runner = CliRunner()


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale_cli") / "cells.h5ad"
    return write_h5ad(path, n_cells=1500, n_genes=30, n_tfs=5, n_perturbations=4, seed=2)


def test_pseudobulk_writes_what_the_function_returns(cells: Path, tmp_path: Path) -> None:
    out = tmp_path / "pb.h5ad"
    result = runner.invoke(app, ["pseudobulk", str(cells), "--out", str(out), "--chunk-size", "97"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        ad.read_h5ad(out).layers["delta"], pseudobulk(cells).layers["delta"]
    )
    again = runner.invoke(app, ["pseudobulk", str(cells), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_de_writes_one_row_per_group_and_gene(cells: Path, tmp_path: Path) -> None:
    out = tmp_path / "de.csv"
    result = runner.invoke(app, ["de", str(cells), "--out", str(out), "--max-cells", "300"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    expected = differential_expression(cells)
    assert list(table.columns[:3]) == ["pool", "group", "gene"]
    assert len(table) == sum(r.pvalue.size for r in expected.values())
    first = table[table["pool"] == "A"]["pvalue"].to_numpy()
    np.testing.assert_allclose(first, expected["A"].pvalue.ravel(), rtol=1e-12)
    assert set(table["gene"]) == set(ad.read_h5ad(cells).var_names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "mycluster"], "scheduler address"),
        (["--method", "t"], "'method' must be one of"),
        (["--by", "context"], "must include 'perturbation'"),
    ],
)
def test_bad_inputs_are_one_clear_line(
    cells: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["de", str(cells), "--out", str(tmp_path / "x.csv"), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["de", str(tmp_path / "no.h5ad"), "--out", str(tmp_path / "y")])
    assert missing.exit_code == 2 and "no such file" in missing.output
