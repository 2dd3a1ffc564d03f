"""Dose-response: the Hill fit recovers planted curves; flat and non-monotone responses are
flagged instead of given an EC50; dose_response predicts the grid and fits genes and pathways."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import DOSE, PERTURBATION
from celltwin.models import NearestDoseSignature, get_model
from celltwin.screen import HILL_COLUMNS, DoseResponseResult, dose_response, fit_hill, hill
from celltwin.simulate import simulate

GRID = np.logspace(-3, 3, 9)


@pytest.mark.parametrize(
    ("top", "ec50", "slope"), [(2.0, 1.0, 1.0), (-1.5, 0.05, 2.5), (0.8, 40.0, 0.7)]
)
def test_noiseless_curves_are_recovered(top: float, ec50: float, slope: float) -> None:
    fit = fit_hill(GRID, hill(GRID, top=top, ec50=ec50, slope=slope), n_samples=0)
    assert fit["status"] == "ok"
    assert fit["top"] == pytest.approx(top, rel=1e-4)
    assert fit["ec50"] == pytest.approx(ec50, rel=1e-3)
    assert fit["slope"] == pytest.approx(slope, rel=1e-3)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-8)
    assert list(fit.index) == list(HILL_COLUMNS)


def test_noisy_curves_are_recovered_within_their_intervals() -> None:
    rng = np.random.default_rng(3)
    truth = {"top": 1.0, "ec50": 2.0, "slope": 1.2}
    fits = []
    for _ in range(10):
        y = hill(GRID, **truth) + rng.normal(0.0, 0.03, GRID.size)
        lower, upper = y - 0.06, y + 0.06
        fits.append(fit_hill(GRID, y, lower=lower, upper=upper, n_samples=30, seed=1))
    table = pd.DataFrame(fits)
    assert (table["status"] == "ok").all()
    assert np.median(table["ec50"].astype(float)) == pytest.approx(2.0, rel=0.15)
    assert np.median(table["slope"].astype(float)) == pytest.approx(1.2, rel=0.15)
    assert np.median(table["top"].astype(float)) == pytest.approx(1.0, rel=0.05)
    inside = (table["ec50_lower"] <= 2.0) & (2.0 <= table["ec50_upper"])
    assert inside.mean() >= 0.7
    assert (table["ec50_lower"] < table["ec50"]).all() and (
        table["ec50"] < table["ec50_upper"]
    ).all()


def test_flat_non_monotone_and_unsaturated_responses_get_no_ec50() -> None:
    rng = np.random.default_rng(0)
    flat = fit_hill(GRID, rng.normal(0.0, 0.01, GRID.size), min_effect=0.1, n_samples=5)
    bell = fit_hill(GRID, np.exp(-0.5 * np.log10(GRID) ** 2), n_samples=5)
    late = fit_hill(GRID, hill(GRID, top=1.0, ec50=3000.0, slope=1.0), n_samples=5)
    assert (flat["status"], bell["status"], late["status"]) == (
        "flat",
        "non_monotone",
        "above_range",
    )
    for fit in (flat, bell, late):
        assert np.isnan(fit["ec50"]) and np.isnan(fit["slope"]) and np.isnan(fit["ec50_lower"])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        fit_hill([0.0, 1.0, 2.0], [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="length >= 3"):
        fit_hill([1.0, 2.0], [0.0, 1.0])


def _plate() -> tuple[AnnData, dict[str, float]]:
    """Signature rows of one drug at six doses; gene g_i follows a Hill curve with EC50 e_i."""
    doses = np.array([0.01, 0.1, 1.0, 10.0, 100.0, 1000.0])
    ec50 = {"g0": 0.5, "g1": 5.0, "g2": 50.0}
    x = np.column_stack(
        [hill(doses, top=3.0 if g != "g1" else -2.0, ec50=e, slope=1.0) for g, e in ec50.items()]
        + [np.zeros(doses.size)]
    )
    obs = pd.DataFrame({PERTURBATION: "drugA", DOSE: doses}, index=[f"w{i}" for i in range(6)])
    return AnnData(x, obs=obs, var=pd.DataFrame(index=[*ec50, "flat"])), ec50


def test_dose_response_with_a_dose_signature_model_fits_genes_and_pathways() -> None:
    plate, ec50 = _plate()
    model = NearestDoseSignature().fit(plate)
    pathways = pd.DataFrame({"pathway": ["P", "P"], "gene": ["g0", "g2"], "weight": [1.0, 1.0]})
    result = dose_response(model, None, drug="drugA", doses=plate.obs[DOSE], genes=[*ec50, "flat"],
                           pathways=pathways, n_samples=10)  # fmt: skip
    assert isinstance(result, DoseResponseResult)
    np.testing.assert_allclose(result.doses, plate.obs[DOSE])
    fits = result.fits.set_index("feature")
    for gene, e in ec50.items():
        assert fits.loc[gene, "ec50"] == pytest.approx(e, rel=1e-3)
    assert fits.loc["g1", "top"] == pytest.approx(-2.0, rel=1e-3)
    assert fits.loc["flat", "status"] == "flat"
    assert result.pathways is not None
    np.testing.assert_allclose(np.ravel(result.pathways.X), plate[:, ["g0", "g2"]].X.mean(axis=1))
    assert fits.loc["P", "kind"] == "pathway" and fits.loc["P", "top"] == pytest.approx(
        3.0, rel=0.05
    )


def test_dose_response_with_a_cell_model_on_the_simulator() -> None:
    doses = (0.01, 0.1, 1.0, 10.0, 100.0)
    sim = simulate(n_genes=30, n_tfs=5, contexts=("A",), n_perturbations=0, combinations=0,
                   drugs=2, doses=doses, cells_per_condition=30, seed=0)  # fmt: skip
    model = get_model("nearest_dose").fit(sim.adata)
    result = dose_response(model, sim.adata, drug="drug01", doses=doses, context="A",
                           n_genes=4, n_samples=5)  # fmt: skip
    assert result.effects.shape == (5, 30) and len(result.fits) == 4
    statuses = {"ok", "flat", "non_monotone", "poor_fit", "above_range", "below_range"}
    assert set(result.fits["status"]) <= statuses
    # The grid's effects are the measured ones: the largest change grows with dose.
    change = np.abs(np.asarray(result.effects.X)).max(axis=1)
    assert change[-1] > change[0]
    with pytest.raises(ValueError, match="three positive doses"):
        dose_response(model, sim.adata, drug="drug01", doses=[1.0, -1.0, 2.0], context="A")


def test_doses_without_an_interval_keep_their_value_in_the_refits() -> None:
    rng = np.random.default_rng(0)
    y = hill(GRID, top=1.0, ec50=2.0, slope=1.0) + rng.normal(0.0, 0.05, GRID.size)
    # Zero-width intervals at half the doses, none at the others (as transition gives for a
    # measured dose): every refit sees y itself, so the interval collapses onto the estimate.
    bounds = np.where(np.arange(GRID.size) % 2 == 0, y, np.nan)
    pinned = fit_hill(GRID, y, lower=bounds, upper=bounds, n_samples=10)
    resampled = fit_hill(GRID, y, n_samples=10)  # a residual bootstrap
    assert pinned["ec50_upper"] - pinned["ec50_lower"] == pytest.approx(0.0, abs=1e-6)
    assert resampled["ec50_upper"] - resampled["ec50_lower"] > 0.05
