"""Effect-interval coverage: held-out true effects against a model's intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.benchmark import FoldData, run_benchmark
from celltwin.benchmark._scoring import effect_interval_coverage

GENES = [f"g{i}" for i in range(10)]


def _cells(context: str, pert: str, x: np.ndarray) -> AnnData:
    obs = pd.DataFrame(
        {CONTEXT: context, PERTURBATION: pert}, index=[f"{pert}{i}" for i in range(len(x))]
    )
    return AnnData(x.astype(np.float32), obs=obs, var=pd.DataFrame(index=GENES))


@pytest.fixture
def fold() -> FoldData:
    rng = np.random.default_rng(0)
    ctrl = _cells("A", CONTROL, rng.normal(1.0, 0.1, (30, 10)))
    kd = _cells("A", "KD", rng.normal(1.0, 0.1, (30, 10)) + np.linspace(-1, 1, 10))
    import anndata as ad

    truth = ad.concat([ctrl, kd])
    return FoldData(
        name="f", train=ctrl, query=ctrl, truth=truth, conditions=pd.DataFrame(), genes=GENES
    )


def _effects(center: np.ndarray, half: np.ndarray) -> AnnData:
    obs = pd.DataFrame({CONTEXT: ["A"], PERTURBATION: ["KD"]}, index=["c0"])
    return AnnData(
        center[None].astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=GENES),
        layers={"lower": (center - half)[None], "upper": (center + half)[None]},
    )


def test_coverage_counts_genes_inside(fold: FoldData) -> None:
    true = fold.truth[fold.truth.obs[PERTURBATION] == "KD"].X.mean(0) - fold.query.X.mean(0)
    true = np.asarray(true, dtype=float).ravel()
    half = np.full(10, 1e-3)
    shifted = true.copy()
    shifted[:3] += 1.0  # three genes' intervals miss the truth
    table = effect_interval_coverage(
        fold, {"exact": _effects(true, half), "shifted": _effects(shifted, half)}
    )
    values = table.set_index("model")["value"]
    assert values["exact"] == 1.0
    assert values["shifted"] == pytest.approx(0.7)
    assert set(table["metric"]) == {"effect_interval_coverage"}
    # No interval (a measured condition is returned as measured): no row.
    nan = _effects(true, half)
    nan.layers["lower"][:] = np.nan
    assert effect_interval_coverage(fold, {"measured": nan}).empty


def test_benchmark_reports_transition_interval_coverage(tmp_path) -> None:
    board = run_benchmark(
        "sim-combinations",
        models=["transition"],
        folds=["split0"],
        out=tmp_path,
        progress=False,
        isolate=False,
        report=False,
        smoke=True,
        model_params={"transition": {"n_members": 2, "max_steps": 20, "n_latent": 8}},
    )
    cov = board.results[board.results["metric"] == "effect_interval_coverage"]["value"]
    assert len(cov) > 0 and cov.between(0.0, 1.0).all()
    assert "Effect intervals" in (tmp_path / "leaderboard.md").read_text()
