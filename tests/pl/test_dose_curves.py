"""pl.dose_curves: one panel per feature, a Hill curve only where the fit gives an EC50."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import DOSE, PERTURBATION
from celltwin.models import NearestDoseSignature
from celltwin.pl import dose_curves
from celltwin.screen import dose_response, hill


@pytest.fixture(scope="module")
def result():
    doses = np.array([0.01, 0.1, 1.0, 10.0, 100.0, 1000.0])
    x = np.column_stack([hill(doses, top=2.0, ec50=1.0, slope=1.0), np.zeros(6),
                         np.exp(-0.5 * np.log10(doses) ** 2)])  # fmt: skip
    obs = pd.DataFrame({PERTURBATION: "drugA", DOSE: doses}, index=[f"w{i}" for i in range(6)])
    plate = AnnData(x, obs=obs, var=pd.DataFrame(index=["up", "flat", "bell"]))
    model = NearestDoseSignature().fit(plate)
    pathways = pd.DataFrame({"pathway": ["P"], "gene": ["up"], "weight": [1.0]})
    return dose_response(model, None, drug="drugA", doses=doses, genes=["up", "flat", "bell"],
                         pathways=pathways, n_samples=5)  # fmt: skip


def test_one_panel_per_feature_with_a_curve_only_for_an_ec50(result) -> None:
    fig = dose_curves(result, columns=2)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    titles = {ax.get_title().split()[0]: ax for ax in axes}
    assert next(iter(titles)) == "P"  # pathways first
    assert "EC50 1" in titles["up"].get_title()
    assert "flat: no EC50" in titles["flat"].get_title()
    assert "non_monotone: no EC50" in titles["bell"].get_title()
    # The fitted curve is drawn densely (200 points) only where there is an EC50.
    dense = lambda ax: [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 200]  # noqa: E731
    assert len(dense(titles["up"])) == 1 and not dense(titles["bell"])


def test_unknown_features_are_refused(result) -> None:
    with pytest.raises(KeyError, match="no fit for"):
        dose_curves(result, features=["nope"])
