"""nearest_dose: the measured effect of the same drug at the closest dose in log space."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, DOSE, PERTURBATION, PERTURBATION_TYPE
from celltwin.models import NearestDoseBaseline, UnseenConditionError


def _dose_cells() -> AnnData:
    """Context A: controls at 1.5 (log1p-like values, not counts), drug 'd' at doses 1 (+1 on
    gene 0) and 100 (+3 on gene 1)."""
    rows, obs = [], []
    for label, dose, shift in (("control", "", None), ("d", "1", 0), ("d", "100", 1)):
        for _ in range(10):
            x = np.full(3, 1.5)
            if shift is not None:
                x[shift] += 1.0 if dose == "1" else 3.0
            rows.append(x)
            obs.append((label, "control" if label == "control" else "drug", "A", dose))
    frame = pd.DataFrame(obs, columns=[PERTURBATION, PERTURBATION_TYPE, CONTEXT, DOSE])
    frame.index = [f"c{i}" for i in range(len(frame))]
    return AnnData(np.array(rows), obs=frame, var=pd.DataFrame(index=["g0", "g1", "g2"]))


def test_nearest_dose_uses_the_closest_dose_in_log_space() -> None:
    adata = _dose_cells()
    model = NearestDoseBaseline().fit(adata)
    pred = model.predict(adata, conditions=[("A", "d", "3"), ("A", "d", "30")], n_cells=1)
    # log10(3) is closer to log10(1) than to log10(100); log10(30) the other way round.
    np.testing.assert_allclose(pred.X, [[2.5, 1.5, 1.5], [1.5, 4.5, 1.5]])
    with pytest.raises(UnseenConditionError, match="nearest_dose"):
        model.predict(adata, conditions=[("A", "e", "3")], n_cells=1)
