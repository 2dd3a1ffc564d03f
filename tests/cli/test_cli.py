"""The command line: each command calls the public API and reports clearly."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from celltwin._keys import CONTEXT, PERTURBATION, SPLIT, TEST
from celltwin._settings import shared_dir
from celltwin.cli import app

runner = CliRunner()


def _counts(n: int, g: int = 20, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, size=(n, g)).astype(np.float32)
    x[:, 0] += 1
    return sp.csr_matrix(x)


def _vcc_file(path: Path) -> Path:
    """A Virtual-Cell-Challenge-style file: target_gene / non-targeting, two cell lines."""
    targets = ["non-targeting"] * 8 + ["TP53"] * 5 + ["MYC"] * 4 + ["KRAS"] * 3
    obs = pd.DataFrame(
        {"target_gene": targets * 2, "cell_line": ["K562"] * 20 + ["RPE1"] * 20, "gem_group": "g1"},
        index=[f"c{i}" for i in range(40)],
    )
    adata = ad.AnnData(_counts(40), obs=obs)
    adata.var_names = [f"G{i}" for i in range(20)]
    adata.write_h5ad(path)
    return path


def _gears_file(path: Path) -> Path:
    """A GEARS-style file: condition A+ctrl / A+B / ctrl, one cell type."""
    conditions = ["ctrl"] * 10 + ["CEBPA+ctrl"] * 4 + ["ctrl+KLF1"] * 4 + ["CEBPA+KLF1"] * 3
    obs = pd.DataFrame(
        {"condition": conditions, "cell_type": "K562"}, index=[f"c{i}" for i in range(21)]
    )
    adata = ad.AnnData(_counts(21, seed=1), obs=obs)
    adata.var_names = [f"G{i}" for i in range(20)]
    adata.var["gene_name"] = list(adata.var_names)
    adata.write_h5ad(path)
    return path


def test_info_reports_vcc_convention_and_counts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(_vcc_file(tmp_path / "vcc.h5ad"))])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "convention        vcc" in out
    assert "target_gene" in out and "non-targeting" in out
    assert "40 x 20" in out
    assert "K562: 20" in out and "RPE1: 20" in out
    assert "TP53: 10" in out  # 5 cells in each of two lines
    assert "control cells     16" in out


def test_info_reports_gears_combinations(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(_gears_file(tmp_path / "gears.h5ad"))])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "convention        gears" in out
    assert "perturbations     3" in out  # CEBPA, KLF1, CEBPA+KLF1
    assert "CEBPA+KLF1: 3" in out
    assert "combinations      1 (up to 2 components)" in out
    assert "control cells     10" in out


def test_prepare_then_split_writes_a_leakage_checked_split(tmp_path: Path) -> None:
    src = _vcc_file(tmp_path / "vcc.h5ad")
    prepared = tmp_path / "prepared.h5ad"
    result = runner.invoke(app, ["prepare", str(src), "--out", str(prepared)])
    assert result.exit_code == 0, result.output
    adata = ad.read_h5ad(prepared)
    assert set(adata.obs[PERTURBATION]) == {"control", "TP53", "MYC", "KRAS"}
    assert set(adata.obs[CONTEXT]) == {"K562", "RPE1"}
    assert "counts" in adata.layers

    split = tmp_path / "split.h5ad"
    args = ["split", str(prepared), "--out", str(split), "--strategy", "contexts", "--test", "RPE1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = ad.read_h5ad(split)
    test_cells = out.obs[out.obs[SPLIT] == TEST]
    assert set(test_cells[CONTEXT]) == {"RPE1"}
    assert "control" not in set(test_cells[PERTURBATION])


def test_bad_input_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    prepared = tmp_path / "prepared.h5ad"
    runner.invoke(app, ["prepare", str(_vcc_file(tmp_path / "v.h5ad")), "--out", str(prepared)])
    out = tmp_path / "never.h5ad"
    args = ["split", str(prepared), "--out", str(out), "--strategy", "contexts", "--test", "HeLa"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "HeLa" in result.output and "RPE1" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()

    result = runner.invoke(app, ["info", str(tmp_path / "missing.h5ad")])
    assert result.exit_code == 2 and "does not exist" in result.output

    result = runner.invoke(app, ["data", "fetch", "no_such_dataset", "--out", str(out)])
    assert result.exit_code == 2 and "unknown dataset" in result.output


def test_data_list_names_the_registered_datasets() -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    for name in ("papalexi2021_subset", "replogle2022_k562", "neurips2023", "norman2019"):
        assert name in result.output


@pytest.mark.skipif(
    not (shared_dir() / "data").is_dir(), reason="shared data not found: set CELLTWIN_SHARED"
)
def test_info_on_shared_signature_file() -> None:
    path = shared_dir() / "data/signatures/sciplex3_a549.json.gz"
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "23 perturbations; ranking full" in result.output


def test_models_lists_every_registered_model_once_in_a_narrow_table() -> None:
    from celltwin.models import available

    result = runner.invoke(app, ["models"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").split("\n")
    # Descriptions wrap onto indented continuation lines.
    names = [line.split()[0] for line in lines[1:] if not line.startswith(" ")]
    # Every kind: cell, pseudobulk and signature models, nearest_dose included, each once.
    assert names == list(available().index)
    assert {"nearest_dose", "low_rank", "signature_factor", "linear"} <= set(names)
    assert max(len(line.rstrip()) for line in lines) <= 100
