"""evaluate refuses a truth with no expression (issue 16: an all-zero truth was scored)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import CONTEXT, CONTROL, CRISPRI, PERTURBATION, PERTURBATION_TYPE
from celltwin.eval import evaluate
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


@pytest.mark.parametrize("sparse", [False, True])
def test_all_zero_truth_is_refused_naming_truth_x_and_the_fix(sim, sparse: bool) -> None:
    truth = _adata(np.zeros_like(sim.true_X), sim.true_labels, sim.genes)
    if sparse:
        truth.X = sp.csr_matrix(truth.X)
    pred = _adata(sim.good_X, sim.pred_labels, sim.genes)
    with pytest.raises(ValidationError, match=r"truth holds no expression") as err:
        evaluate(truth, pred, ceiling=False)
    assert "truth.X" in str(err.value) and "Fix:" in str(err.value)
