"""Parity with cell-eval 0.8.x, the Virtual Cell Challenge scorer (skipped without it).

The full-size comparison is benchmarks/eval_parity.py; this runs the same check on a small
simulation so it stays in the test budget.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celltwin._keys import CONTROL, PERTURBATION
from celltwin.eval import VCC_METRICS, build_inputs, compute_metrics, mean_of_centroids, vcc_score

ce = pytest.importorskip(
    "cell_eval", reason="cell-eval is not installed (pip install 'celltwin[parity]')"
)
ad = pytest.importorskip("anndata")

CELL_EVAL_NAMES = {"mae": "mae", "des": "overlap_at_N", "pds": "discrimination_score_l1"}


def _write(path: Path, X: np.ndarray, labels: np.ndarray, genes: np.ndarray) -> None:
    obs = pd.DataFrame({PERTURBATION: labels}, index=[f"c{i}" for i in range(len(labels))])
    a = ad.AnnData(X=X.astype(np.float32), obs=obs)
    a.var_names = genes
    a.write_h5ad(path)


def _cell_eval(tmp_path: Path, name: str, truth: Path, pred: Path):
    # Third-party warnings (polars, anndata, pdex) are not what this test checks.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = ce.MetricsEvaluator(
            adata_pred=str(pred),
            adata_real=str(truth),
            control_pert=CONTROL,
            pert_col=PERTURBATION,
            num_threads=1,
            outdir=str(tmp_path / f"ce_{name}"),
        )
        results, agg = evaluator.compute(profile="vcc", write_csv=True)
    frame = results.to_pandas().set_index("perturbation")
    de = pd.read_csv(tmp_path / f"ce_{name}" / "real_de.csv")
    return frame, agg, de


# cell-eval's own run time (pdex compiles numba kernels on first use) makes this 15-40 s.
@pytest.mark.slow
def test_vcc_metrics_match_cell_eval(sim, tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.h5ad"
    _write(truth_path, sim.true_X, sim.true_labels, sim.genes)
    # The cell-eval baseline: every perturbation predicted as the mean of training centroids.
    profile = mean_of_centroids(sim.train_X, sim.train_labels).astype(np.float32)
    is_ctrl = sim.pred_labels == CONTROL
    baseline_X = np.where(is_ctrl[:, None], sim.good_X, profile[None, :])
    # Two cell-eval runs keep this test short: a good prediction and the baseline, whose constant
    # cells stress the tie handling of the DE test.
    preds = {"good": sim.good_X, "baseline": baseline_X}
    means = {}
    for name, X in preds.items():
        pred_path = tmp_path / f"{name}.h5ad"
        _write(pred_path, X, sim.pred_labels, sim.genes)
        theirs, agg, real_de = _cell_eval(tmp_path, name, truth_path, pred_path)
        inputs = build_inputs(
            X.astype(np.float32),
            sim.true_X.astype(np.float32),
            pred_labels=sim.pred_labels,
            true_labels=sim.true_labels,
            genes=sim.genes,
        )
        ours = compute_metrics(inputs, metrics=VCC_METRICS)
        theirs = theirs.loc[inputs.perturbations]
        np.testing.assert_allclose(ours["mae"], theirs["mae"], atol=1e-6)
        np.testing.assert_allclose(ours["des"], theirs["overlap_at_N"], atol=1e-3)
        np.testing.assert_allclose(ours["pds"], theirs["discrimination_score_l1"], atol=1e-3)
        # Same DE p-values as pdex.
        rows = pd.Index(inputs.true_de.groups).get_indexer(real_de["target"].astype(str))
        cols = pd.Index(inputs.genes).get_indexer(real_de["feature"].astype(str))
        np.testing.assert_allclose(inputs.true_de.pvalue[rows, cols], real_de["p_value"], atol=1e-8)
        means[name] = ({k: float(v.mean()) for k, v in ours.items()}, agg)
    base = means["baseline"][0]
    for name in ("good",):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from cell_eval._score import score_agg_metrics

            score = score_agg_metrics(means[name][1], means["baseline"][1]).to_pandas()
        expected = float(score.set_index("metric").loc["avg_score", "from_baseline"])
        mine = means[name][0]
        ours = vcc_score(
            mae=mine["mae"],
            des=mine["des"],
            pds=mine["pds"],
            baseline_mae=base["mae"],
            baseline_des=base["des"],
            baseline_pds=base["pds"],
        )
        assert ours == pytest.approx(expected, abs=1e-6)
