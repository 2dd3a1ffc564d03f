"""Guide-level data: detected, and read as genes with several control labels or a guide map."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import celltwin.io as io
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, PERTURBATION_TYPE
from celltwin.cli import app

GENES = ["AAA1", "BBB", "CCC", "DDD", "G5", "G6"]
#: guide -> target gene, three non-targeting guides and guides named three ways.
GUIDES = {
    "NTg1": "non-targeting",
    "NTg2": "non-targeting",
    "NTg3": "non-targeting",
    "AAA1g1": "AAA1",
    "AAA1g2": "AAA1",
    "BBB_1": "BBB",
    "BBB_2": "BBB",
    "sgCCC-1": "CCC",
    "sgCCC-2": "CCC",
}


def _guide_cells(cells: int = 4, seed: int = 0) -> ad.AnnData:
    """Counts of cells labelled by guide, with the guide's gene in obs['target']."""
    guides = [g for g in GUIDES for _ in range(cells)]
    obs = pd.DataFrame(
        {"guide": guides, "target": [GUIDES[g] for g in guides]},
        index=[f"c{i}" for i in range(len(guides))],
    )
    x = np.random.default_rng(seed).poisson(3.0, size=(len(guides), len(GENES))) + 1
    adata = ad.AnnData(x.astype(np.float32), obs=obs)
    adata.var_names = GENES
    return adata


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "guides.h5ad"
    _guide_cells().write_h5ad(path)
    return path


def _codes(err: pytest.ExceptionInfo[io.ValidationError]) -> set[str]:
    return {p.code for p in err.value.problems}


def test_guide_level_data_is_flagged_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(io.ValidationError) as err:
        io.read(_file(tmp_path), perturbation_key="guide", control_label="NTg1")
    assert _codes(err) == {"control_like_perturbations", "guide_level"}
    text = str(err.value)
    assert "'NTg2', 'NTg3'" in text and "--control-label NTg1,NTg2,NTg3" in text
    assert "--guide-to-gene target" in text  # the column mapping guides to genes is found
    assert "'AAA1g1' targets AAA1" in text


def test_check_flags_guides_in_canonical_data() -> None:
    adata = _guide_cells()
    labels = adata.obs["guide"].astype(str).replace("NTg1", CONTROL)
    adata.obs[PERTURBATION] = labels.to_numpy()
    adata.obs[PERTURBATION_TYPE] = np.where(labels == CONTROL, CONTROL, "crispr_ko")
    adata.obs[CONTEXT] = "K562"
    adata.X = np.log1p(adata.X)
    problems = {p.code: p for p in io.check(adata)}
    assert {"control_like_perturbations", "guide_level"} <= set(problems)
    assert all(p.severity == "error" for p in problems.values())


def test_gene_level_labels_are_not_guides(tmp_path: Path) -> None:
    genes = ["STAT1", "STAT2", "STAT3", "IRF1", "IRF7", "NKX2-1", "NKX2-5", "NT5E", "MAP2K6"]
    obs = pd.DataFrame({PERTURBATION: [CONTROL, *genes] * 3})
    obs[PERTURBATION_TYPE] = np.where(obs[PERTURBATION] == CONTROL, CONTROL, "crispri")
    obs[CONTEXT] = "K562"
    obs.index = [f"c{i}" for i in range(len(obs))]
    adata = ad.AnnData(np.log1p(np.ones((len(obs), 3), dtype=np.float32)), obs=obs)
    adata.var_names = ["STAT1", "IRF1", "GAPDH"]
    assert io.check(adata) == []


def test_several_control_labels(tmp_path: Path) -> None:
    adata = _guide_cells()
    adata.obs["guide"] = (
        adata.obs["target"]
        .astype(str)
        .where(~adata.obs["guide"].str.startswith("NT"), adata.obs["guide"])
    )
    path = tmp_path / "genes.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(io.ValidationError) as err:
        io.read(path, perturbation_key="guide", control_label="NTg1")
    assert _codes(err) == {"control_like_perturbations"}
    assert "--guide-to-gene target" in str(err.value)  # it maps NTg* to non-targeting
    read = io.read(path, perturbation_key="guide", control_label=["NTg1", "NTg2", "NTg3"])
    assert set(read.obs[PERTURBATION]) == {CONTROL, "AAA1", "BBB", "CCC"}
    assert (read.obs[PERTURBATION] == CONTROL).sum() == 12
    assert io.check(read) == []


@pytest.mark.parametrize("gene_key", ["target", GUIDES])
def test_guides_mapped_to_genes(tmp_path: Path, gene_key: object) -> None:
    read = io.read(
        _file(tmp_path), perturbation_key="guide", control_label="NTg1", gene_key=gene_key
    )
    assert set(read.obs[PERTURBATION]) == {CONTROL, "AAA1", "BBB", "CCC"}
    assert (read.obs[PERTURBATION] == CONTROL).sum() == 12  # every non-targeting guide
    assert (read.obs[PERTURBATION] == "BBB").sum() == 8
    assert list(read.obs["guide"][:1]) == ["NTg1"]  # the guide column is kept
    assert io.check(read) == []
    # Without control_label, the gene of control guides is a known control label.
    plain = io.read(_file(tmp_path), perturbation_key="guide", gene_key=gene_key)
    assert (plain.obs[PERTURBATION] == CONTROL).sum() == 12


def test_guide_map_errors(tmp_path: Path) -> None:
    path = _file(tmp_path)
    with pytest.raises(io.ValidationError, match="--guide-to-gene 'nope' is not an obs column"):
        io.read(path, perturbation_key="guide", gene_key="nope")
    partial = {g: t for g, t in GUIDES.items() if g != "BBB_2"}
    with pytest.raises(io.ValidationError, match=r"4 cell\(s\) have a guide with no gene"):
        io.read(path, perturbation_key="guide", gene_key=partial)
    adata = _guide_cells()
    adata.obs["target"] = adata.obs["target"].astype(str)
    adata.obs.iloc[-1, adata.obs.columns.get_loc("target")] = "DDD"
    adata.write_h5ad(path)
    with pytest.raises(io.ValidationError, match="map to more than one gene"):
        io.read(path, perturbation_key="guide", gene_key="target")


def test_prepare_cli_guides(tmp_path: Path) -> None:
    runner = CliRunner()
    src, out = _file(tmp_path), tmp_path / "out.h5ad"
    base = ["prepare", str(src), "--out", str(out), "--perturbation-key", "guide"]
    result = runner.invoke(app, [*base, "--control-label", "NTg1"])
    assert result.exit_code == 2
    assert "guide IDs, not genes" in result.output and "--guide-to-gene target" in result.output
    assert "Traceback" not in result.output and not out.exists()

    args = [*base, "--control-label", "NTg1,NTg2", "--control-label", "NTg3"]
    result = runner.invoke(app, [*args, "--guide-to-gene", "target"])
    assert result.exit_code == 0, result.output
    assert set(ad.read_h5ad(out).obs[PERTURBATION]) == {CONTROL, "AAA1", "BBB", "CCC"}
    info = runner.invoke(app, ["info", str(out)])
    assert "problems          none" in info.output
