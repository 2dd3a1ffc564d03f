"""score_fold: one ceiling per fold, whichever models the run holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, UNS_KEY
from celltwin.benchmark import FoldData, make_fold
from celltwin.benchmark._scoring import CEILING, score_fold

METRICS = ("vcc_score", "mae", "des", "pds")


@pytest.fixture(scope="module")
def fold() -> FoldData:
    from celltwin.simulate import simulate
    from celltwin.split import split_perturbations

    adata = simulate(
        n_genes=60, n_tfs=6, contexts=("A",), n_perturbations=6, combinations=0,
        cells_per_condition=30, seed=3,
    ).adata  # fmt: skip
    perts = sorted(set(adata.obs[PERTURBATION].astype(str)) - {CONTROL})
    split_perturbations(adata, test=perts[:3], val=[], seed=0)
    return make_fold(adata, name="f", n_top_genes=None)


def _prediction(fold: FoldData, kind: str) -> AnnData:
    """The truth's perturbed cells (``cells``) or their means (``pseudobulk``)."""
    truth = fold.truth[fold.truth.obs[PERTURBATION].astype(str) != CONTROL]
    if kind == "cells":
        pred = truth.copy()
    else:
        labels = truth.obs[PERTURBATION].astype(str).to_numpy()
        groups = np.unique(labels)
        X = np.vstack([np.asarray(truth.X[labels == g].mean(axis=0)).ravel() for g in groups])
        obs = pd.DataFrame({CONTEXT: "A", PERTURBATION: groups}, index=groups)
        pred = AnnData(X.astype(np.float32), obs=obs, var=truth.var.copy())
    pred.uns[UNS_KEY] = {"prediction": {"kind": kind, "model": kind}}
    return pred


def _ceiling(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[table["model"] == CEILING]
    return rows.sort_values(["metric", PERTURBATION]).reset_index(drop=True)


def test_ceiling_is_the_same_when_a_pseudobulk_model_is_scored_first(fold: FoldData) -> None:
    # The ceiling is computed in the first full model's evaluation ("a_linear" sorts first);
    # a pseudobulk prediction skips des, and the fold used to lose des's ceiling with it.
    cells = {"z_mean": _prediction(fold, "cells")}
    both = {"a_linear": _prediction(fold, "pseudobulk"), **cells}
    alone, _ = score_fold(fold, cells, metrics=METRICS)
    mixed, _ = score_fold(fold, both, metrics=METRICS)
    assert set(_ceiling(mixed)["metric"]) == {"mae", "des", "pds"}
    assert _ceiling(mixed)["value"].notna().all()
    pd.testing.assert_frame_equal(_ceiling(mixed), _ceiling(alone))
    # The pseudobulk model itself still has no des.
    assert "des" not in set(mixed.loc[mixed["model"] == "a_linear", "metric"])


def test_fold_keeps_its_ceiling_when_no_model_predicts_every_unit(fold: FoldData) -> None:
    # A model refusing one unit: the ceiling comes from the truth as its own prediction.
    full = _prediction(fold, "pseudobulk")
    partial = full[full.obs[PERTURBATION].astype(str) != full.obs[PERTURBATION].iloc[0]].copy()
    alone, _ = score_fold(fold, {"z_mean": _prediction(fold, "cells")}, metrics=METRICS)
    refused, _ = score_fold(fold, {"a_linear": partial}, metrics=METRICS)
    pd.testing.assert_frame_equal(_ceiling(refused), _ceiling(alone))
    assert _ceiling(refused)[PERTURBATION].nunique() == 3
