"""Export to cell-eval / Virtual Cell Challenge layout, and cell-eval reading it back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import CONTEXT, CONTROL, CRISPRI, PERTURBATION, PERTURBATION_TYPE, UNS_KEY
from celltwin.eval import evaluate, to_vcc, write_vcc
from celltwin.eval._export import VCC_CONTROL
from celltwin.io import ValidationError


def _adata(X, labels, genes) -> ad.AnnData:
    labels = np.asarray(labels)
    obs = pd.DataFrame(
        {
            PERTURBATION: labels,
            PERTURBATION_TYPE: np.where(labels == CONTROL, CONTROL, CRISPRI),
            CONTEXT: "K562",
        },
        index=[f"c{i}" for i in range(len(labels))],
    )
    a = ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs)
    a.var_names = list(genes)
    return a


@pytest.fixture(scope="module")
def data(sim):
    return (
        _adata(sim.true_X, sim.true_labels, sim.genes),
        _adata(sim.good_X, sim.pred_labels, sim.genes),
    )


def test_layout_is_what_cell_eval_expects(data) -> None:
    truth, pred = data
    genes = list(reversed(truth.var_names))
    out = to_vcc(pred[pred.obs[PERTURBATION] != CONTROL], control=truth, genes=genes)
    assert list(out.obs.columns) == ["target_gene", "cell_type"]
    labels = out.obs["target_gene"].to_numpy()
    assert (
        CONTROL not in labels
        and (labels == VCC_CONTROL).sum() == (truth.obs[PERTURBATION] == CONTROL).sum()
    )
    # Perturbed cells first, then the real control cells, values unchanged.
    n_pert = int((labels != VCC_CONTROL).sum())
    assert np.all(labels[n_pert:] == VCC_CONTROL)
    assert sp.isspmatrix_csr(out.X) and out.X.dtype == np.float32
    assert list(out.var_names) == genes
    real = truth[truth.obs[PERTURBATION] == CONTROL][:, genes].X
    np.testing.assert_array_equal(out.X[n_pert:].toarray(), real)
    assert out.uns[UNS_KEY]["export"]["control_cells_from"] == "control"


def test_refusals_name_the_problem(data) -> None:
    truth, pred = data
    with pytest.raises(ValidationError, match="no control cells"):
        to_vcc(pred[pred.obs[PERTURBATION] != CONTROL])
    with pytest.raises(ValidationError, match="lacks 1 of the"):
        to_vcc(pred, genes=[*truth.var_names, "NOT_A_GENE"])
    counts = pred.copy()
    counts.X = np.rint(np.expm1(counts.X))
    with pytest.raises(ValidationError, match="whole numbers"):
        to_vcc(counts)
    pb = pred.copy()
    pb.uns[UNS_KEY] = {"prediction": {"kind": "pseudobulk"}}
    with pytest.raises(ValueError, match="pseudobulk"):
        to_vcc(pb)
    with pytest.raises(ValueError, match=r"\.h5ad"):
        write_vcc(pred, "pred.vcc")


cell_eval = pytest.importorskip("cell_eval", reason="cell-eval is not installed")


# cell-eval's first run compiles pdex's numba kernels: 15-40 s.
@pytest.mark.slow
def test_cell_eval_scores_the_exported_files(data, tmp_path: Path) -> None:
    truth, pred = data
    perturbed = pred[pred.obs[PERTURBATION] != CONTROL].copy()
    write_vcc(truth, tmp_path / "truth.h5ad")
    write_vcc(perturbed, tmp_path / "pred.h5ad", control=truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party warnings are not what this checks
        evaluator = cell_eval.MetricsEvaluator(
            adata_pred=str(tmp_path / "pred.h5ad"),
            adata_real=str(tmp_path / "truth.h5ad"),
            control_pert=VCC_CONTROL,
            pert_col="target_gene",
            num_threads=1,
            outdir=str(tmp_path / "ce"),
        )
        results, _ = evaluator.compute(profile="vcc", write_csv=False)
    theirs = results.to_pandas().set_index("perturbation").sort_index()
    # Without predicted controls, evaluate uses the truth's: the same as the exported file.
    ours = evaluate(truth, perturbed, metrics=["mae", "des", "pds"], ceiling=False, n_boot=10)
    wide = ours.to_frame().droplevel(CONTEXT).sort_index()
    assert list(theirs.index) == list(wide.index)
    np.testing.assert_allclose(theirs["mae"], wide["mae"], atol=1e-6)
    np.testing.assert_allclose(theirs["overlap_at_N"], wide["des"], atol=1e-3)
    np.testing.assert_allclose(theirs["discrimination_score_l1"], wide["pds"], atol=1e-3)


def test_cell_eval_prep_accepts_the_file(data, tmp_path: Path) -> None:
    cli = shutil.which("cell-eval") or str(Path(sys.executable).with_name("cell-eval"))
    if not Path(cli).exists() or shutil.which("zstd") is None or shutil.which("tar") is None:
        pytest.skip("cell-eval prep needs the cell-eval CLI, zstd and tar")
    truth, pred = data
    genes = tmp_path / "genes.csv"
    genes.write_text("\n".join(truth.var_names) + "\n")
    write_vcc(pred, tmp_path / "pred.h5ad", genes=list(truth.var_names))
    out = tmp_path / "pred.vcc"
    done = subprocess.run(
        [cli, "prep", "-i", str(tmp_path / "pred.h5ad"), "-g", str(genes), "-o", str(out),
         "--expected-gene-dim", str(truth.n_vars)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["pred.h5ad.zst", "watermark.txt"]
