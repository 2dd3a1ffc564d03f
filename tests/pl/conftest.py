"""Small generated cells shared by the tests of celltwin.pl."""

from __future__ import annotations

from collections.abc import Callable

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltwin._keys import CONTEXT, CONTROL, CRISPRI, PERTURBATION, PERTURBATION_TYPE


def _cells(seed: int, shift: float) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    labels = np.repeat([CONTROL, "A", "B", "C"], 20)
    X = rng.gamma(2.0, 0.5, size=(labels.size, 30)).astype(np.float32)
    X[labels == "A", :5] += 1.0 + shift
    X[labels == "B", 5:10] += 1.5 + shift
    X[labels == "C", 10:15] += 2.0 + shift
    obs = pd.DataFrame(
        {
            PERTURBATION: labels,
            PERTURBATION_TYPE: np.where(labels == CONTROL, CONTROL, CRISPRI),
            CONTEXT: "K562",
        },
        index=[f"c{seed}_{i}" for i in range(labels.size)],
    )
    return ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(30)]))


@pytest.fixture(scope="session")
def cells() -> Callable[[int, float], ad.AnnData]:
    """``cells(seed, shift)``: control and three perturbations (A, B, C) of 20 cells, 30 genes."""
    return _cells
