"""Combinations: the pair against its additive expectation, Norman's measures and the rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, DOSE, IN_DOMAIN, PERTURBATION, PREDICTION_SOURCE
from celltwin.models import get_model
from celltwin.screen import (
    INTERACTION_COLUMNS,
    compare_interactions,
    interactions,
    observed_interactions,
)
from celltwin.simulate import simulate

GENES = [f"g{i}" for i in range(60)]


class _Lookup:
    """A stand-in model that answers from a table of effects (with a fixed interval)."""

    name = "lookup"

    def __init__(self, effects: pd.DataFrame, *, half_width: float = 0.0) -> None:
        self.effects = effects
        self.half_width = half_width

    def predict_effects(self, adata: AnnData, *, conditions: pd.DataFrame, seed: int) -> AnnData:
        x = self.effects.loc[list(conditions[PERTURBATION])].to_numpy()
        obs = conditions[[CONTEXT, PERTURBATION, DOSE]].reset_index(drop=True)
        obs.index = obs.index.astype(str)
        obs[IN_DOMAIN] = [0.5 if "+" in p else 1.0 for p in obs[PERTURBATION]]
        obs[PREDICTION_SOURCE] = ["composed" if "+" in p else "measured" for p in obs[PERTURBATION]]
        layers = {"lower": x - self.half_width, "upper": x + self.half_width}
        return AnnData(x, obs=obs, var=pd.DataFrame(index=self.effects.columns), layers=layers)


def _planted() -> pd.DataFrame:
    """Singles A..D (B like A) and pairs: A+C additive, A+B synergistic, C+D buffered."""
    rng = np.random.default_rng(0)
    a, c, d = rng.normal(size=(3, len(GENES)))
    b = 0.7 * a + 0.7 * rng.normal(size=len(GENES))
    rows = {
        "A": a,
        "B": b,
        "C": c,
        "D": d,
        "A+C": a + c,
        "A+B": 2.0 * (a + b),
        "C+D": 0.6 * (c + d),
    }
    return pd.DataFrame(rows, index=GENES).T


def test_an_additive_pair_has_unit_coefficients_and_is_additive() -> None:
    table = interactions(_Lookup(_planted()), AnnData(), pairs=["C+A"], context="K")
    row = table.iloc[0]
    assert row["pair"] == "A+C" and (row["first"], row["second"]) == ("A", "C")
    assert row["c1"] == pytest.approx(1.0, abs=1e-6)
    assert row["c2"] == pytest.approx(1.0, abs=1e-6)
    assert row["model_fit"] == pytest.approx(1.0, abs=1e-9)
    assert row["score"] == pytest.approx(0.0, abs=1e-9)
    assert row["excess"] == pytest.approx(0.0, abs=1e-9)
    assert row["gi_class"] == "ADDITIVE"


def test_a_planted_synergy_is_classed_synergy_and_ranked_first() -> None:
    table = interactions(
        _Lookup(_planted()), AnnData(), pairs=[("C", "D"), "A+C", "A+B"], context="K"
    )
    assert list(table.columns) == list(INTERACTION_COLUMNS)
    assert list(table["pair"]) == ["A+B", "C+D", "A+C"]
    assert list(table["rank"]) == [1, 2, 3]
    top = table.iloc[0]
    assert top["magnitude"] > np.sqrt(2) and top["excess"] == pytest.approx(1.0)
    assert top["score"] == pytest.approx(1.0) and str(top["gi_class"]).startswith("SYNERGY")
    buffered = table.set_index("pair").loc["C+D"]
    assert buffered["score"] == pytest.approx(0.4) and buffered["excess"] == pytest.approx(-0.4)
    assert buffered["magnitude"] < 1.0
    # The pair's own in-domain score and source, not its singles'.
    assert (table[IN_DOMAIN] == 0.5).all() and (table[PREDICTION_SOURCE] == "composed").all()
    assert (table["kind"] == "predicted").all() and (table[CONTEXT] == "K").all()


def test_the_score_interval_comes_from_the_model_intervals() -> None:
    narrow = interactions(
        _Lookup(_planted(), half_width=0.01), AnnData(), pairs=["A+B"], context="K"
    )
    wide = interactions(_Lookup(_planted(), half_width=0.5), AnnData(), pairs=["A+B"], context="K")
    for table in (narrow, wide):
        assert table["score_lower"].iloc[0] <= 1.0 + 1e-9 <= table["score_upper"].iloc[0] + 2e-2
    width = lambda t: float(t["score_upper"].iloc[0] - t["score_lower"].iloc[0])  # noqa: E731
    assert width(wide) > 10 * width(narrow) > 0


def _cells(effects: pd.DataFrame, *, context: str = "K") -> AnnData:
    """Two cells per perturbation whose mean is exactly its effect (controls at 1)."""
    names = [CONTROL, *effects.index]
    base = np.ones(effects.shape[1])
    means = np.vstack([base, base + effects.to_numpy()])
    x = np.repeat(means, 2, axis=0) + np.tile([[0.1], [-0.1]], (len(names), 1))
    obs = pd.DataFrame({PERTURBATION: np.repeat(names, 2), CONTEXT: context})
    obs.index = obs.index.astype(str)
    return AnnData(x, obs=obs, var=pd.DataFrame(index=effects.columns))


def test_observed_interactions_agree_with_the_same_effects_predicted() -> None:
    effects = _planted()
    observed = observed_interactions(_cells(effects), context="K")
    assert list(observed.columns) == list(INTERACTION_COLUMNS)
    assert sorted(observed["pair"]) == ["A+B", "A+C", "C+D"]
    assert (observed["kind"] == "observed").all()
    assert (observed[PREDICTION_SOURCE] == "measured").all()
    predicted = interactions(_Lookup(effects), AnnData(), pairs=list(observed["pair"]), context="K")
    both = compare_interactions(predicted, observed)
    assert both.shape[0] == 3 and both["class_agrees"].all()
    np.testing.assert_allclose(both["score_predicted"], both["score_observed"], atol=1e-9)
    np.testing.assert_allclose(both["c1_predicted"], both["c1_observed"], atol=1e-6)


def test_observed_interactions_skip_pairs_without_measured_singles() -> None:
    effects = _planted().drop(index="D")
    observed = observed_interactions(_cells(effects), context="K")
    assert "C+D" not in set(observed["pair"])
    with pytest.raises(ValueError, match="no cells in context"):
        observed_interactions(_cells(effects), context="other")
    with pytest.raises(ValueError, match="no pair"):
        observed_interactions(_cells(effects.loc[["A", "B"]]), context="K")


def test_the_additive_baseline_predicts_no_interaction_on_the_simulator() -> None:
    sim = simulate(n_genes=40, n_tfs=6, contexts=("A",), n_perturbations=6, combinations=4,
                   cells_per_condition=20, seed=1)  # fmt: skip
    pairs = list(sim.interactions.obs[PERTURBATION])
    singles_only = sim.adata[~sim.adata.obs[PERTURBATION].astype(str).str.contains(r"\+")].copy()
    model = get_model("additive").fit(singles_only)
    table = interactions(model, None, pairs=pairs, context="A")
    assert len(table) == len(pairs)
    np.testing.assert_allclose(table["score"], 0.0, atol=1e-5)
    assert (table["gi_class"] == "ADDITIVE").all()
    np.testing.assert_allclose(table[["c1", "c2"]], 1.0, atol=1e-4)


def test_bad_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="pairs of two different"):
        interactions(_Lookup(_planted()), AnnData(), pairs=["A"], context="K")
    with pytest.raises(TypeError, match="list of pairs"):
        interactions(_Lookup(_planted()), AnnData(), pairs="A+B", context="K")


class _MeasuredSingles(_Lookup):
    """Intervals for the pairs only, as transition gives for pairs of measured singles."""

    def predict_effects(self, adata: AnnData, *, conditions: pd.DataFrame, seed: int) -> AnnData:
        out = super().predict_effects(adata, conditions=conditions, seed=seed)
        single = ~out.obs[PERTURBATION].str.contains("+", regex=False).to_numpy()
        for layer in ("lower", "upper"):
            out.layers[layer][single] = np.nan
        return out


def test_singles_without_intervals_keep_their_value_in_the_score_interval() -> None:
    table = interactions(_MeasuredSingles(_planted(), half_width=0.2), AnnData(), pairs=["A+B"],
                         context="K")  # fmt: skip
    low, high = table["score_lower"].iloc[0], table["score_upper"].iloc[0]
    assert np.isfinite(low) and np.isfinite(high) and low < high
    assert low - 0.02 <= 1.0 <= high + 0.02
