"""The screen engine: ranking, measured beside predicted, refusals, budgets, resume, top cells."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import PREDICTION_SOURCES
from celltwin.eval import benjamini_hochberg
from celltwin.models import predict_effects
from celltwin.screen import (
    Candidates,
    ScreenResult,
    concat,
    genes,
    measured,
    pairs,
    read_screen,
    screen,
)

SINGLES = ["TF02", "TF03", "TF04", "TF06", "G027"]


def _effect(model: Any, perturbation: str, context: str = "A") -> np.ndarray:
    return np.asarray(predict_effects(model, None, conditions=[(context, perturbation)]).X[0])


def _run(model: Any, data: Any, candidates: Candidates, objective: Any, **kw: Any) -> ScreenResult:
    kw = {"context": "A", "progress": False, "n_cells": 5, **kw}
    return screen(model, data.adata, candidates=candidates, objective=objective, **kw)


def test_a_candidate_whose_effect_is_the_query_ranks_first_under_mimic(
    cosine, data, linear
) -> None:
    goal = cosine(_effect(linear, "TF04"), linear.genes_)
    result = _run(linear, data, concat(genes(SINGLES), pairs(SINGLES[:3])), goal, batch_size=3)
    top = result.table.iloc[0]
    assert top["label"] == "TF04" and top["rank"] == 1
    np.testing.assert_allclose(top["score"], 1.0, atol=1e-5)
    assert result.table["score"].is_monotonic_decreasing
    assert list(result.table["rank"]) == list(range(1, len(result.table) + 1))
    # The same objective, lower is better: the order reverses exactly.
    low = _run(linear, data, concat(genes(SINGLES), pairs(SINGLES[:3])), cosine(
        -_effect(linear, "TF04"), linear.genes_, direction="lower"), batch_size=3)  # fmt: skip
    assert low.table["score"].is_monotonic_increasing
    assert low.table["label"].tolist() == result.table["label"].tolist()


def test_every_row_has_its_trust_columns_and_top_genes(cosine, data, linear) -> None:
    result = _run(linear, data, genes(SINGLES), cosine(_effect(linear, "TF03"),
                                                                 linear.genes_))  # fmt: skip
    row = result.table.set_index("label").loc["TF02"]
    effect = _effect(linear, "TF02")
    expected = [linear.genes_[i] for i in np.argsort(-np.abs(effect))[:10]]
    assert row["top_genes"].split(";") == expected
    assert row["kind"] == "predicted"
    assert result.effects.n_obs == len(result.table) and list(result.effects.obs_names) == list(
        result.table["label"]
    )
    np.testing.assert_allclose(result.effects["TF02"].X[0], effect, rtol=1e-5, atol=1e-6)


def test_measured_profiles_are_screened_beside_predictions(cosine, data, linear) -> None:
    query = _effect(linear, "TF06")
    genes_kept = linear.genes_[:30]  # the profiles measured 30 of the 40 genes
    profiles = AnnData(
        X=np.vstack([query[:30], -query[:30]]).astype(np.float32),
        obs=pd.DataFrame(index=["same", "opposite"]),
        var=pd.DataFrame(index=genes_kept),
    )
    result = _run(
        linear, data, concat(genes(SINGLES), measured(profiles, prefix="m:")),
        cosine(query, linear.genes_),
    )  # fmt: skip
    table = result.table.set_index("label")
    assert result.meta["n_genes"] == 30 and "30 of 40" in result.meta["notes"][0]
    assert result.effects.n_vars == 30
    np.testing.assert_allclose(table.loc["m:same", "score"], 1.0, atol=1e-5)
    np.testing.assert_allclose(table.loc["TF06", "score"], 1.0, atol=1e-5)
    assert result.table.iloc[-1]["label"] == "m:opposite"
    assert table.loc["m:same", "prediction_source"] == "measured"
    assert table.loc["m:same", "in_domain"] == 1.0 and table.loc["m:same", "kind"] == "measured"
    assert np.isnan(table.loc["m:same", "lower"])


def test_refused_candidates_are_recorded_and_the_rest_scored(cosine, data, linear) -> None:
    names = ["TF02", "NOPE1", "TF03", "NOPE2", "TF04", "NOPE3"]
    result = _run(linear, data, genes(names), cosine(_effect(linear, "TF02"),
                                                               linear.genes_), batch_size=4)  # fmt: skip
    assert sorted(result.refused["label"]) == ["NOPE1", "NOPE2", "NOPE3"]
    assert result.refused["reason"].str.contains("cannot predict").all()
    assert sorted(result.table["label"]) == ["TF02", "TF03", "TF04"]
    assert result.meta["n_refused"] == 3 and result.meta["complete"]


def test_pvalues_get_a_benjamini_hochberg_fdr_over_the_whole_screen(cosine, data, linear) -> None:
    goal = cosine(_effect(linear, "TF03"), linear.genes_, pvalues=True)
    result = _run(linear, data, concat(genes(SINGLES), pairs(SINGLES)), goal, batch_size=4)
    table = result.table
    np.testing.assert_allclose(table["fdr"], benjamini_hochberg(table["pvalue"].to_numpy()))
    assert table["pvalue"].between(0, 1).all()


def test_a_time_budget_stops_after_the_batch_and_says_so(cosine, data, linear) -> None:
    goal = cosine(_effect(linear, "TF03"), linear.genes_)
    result = _run(linear, data, concat(genes(SINGLES), pairs(SINGLES)), goal, batch_size=4,
                  time_budget=1e-9)  # fmt: skip
    assert result.meta["complete"] is False
    assert len(result.table) + len(result.refused) == 4
    assert result.meta["n_candidates"] == 15


def test_on_batch_reports_each_batch_and_can_stop_the_screen(cosine, data, linear) -> None:
    goal = cosine(_effect(linear, "TF03"), linear.genes_)
    cands = concat(genes(SINGLES), pairs(SINGLES))  # 15 candidates
    seen: list[tuple[int, int]] = []
    _run(linear, data, cands, goal, batch_size=4, on_batch=lambda d, n: seen.append((d, n)))
    assert seen == [(4, 15), (8, 15), (12, 15), (15, 15)]

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        if done >= 8:
            raise Cancelled

    with pytest.raises(Cancelled):
        _run(linear, data, cands, goal, batch_size=4, on_batch=cancel)


def test_a_resumed_screen_equals_an_uninterrupted_one(cosine, data, linear, tmp_path) -> None:
    goal = cosine(_effect(linear, "TF03"), linear.genes_, pvalues=True)
    cands = concat(genes([*SINGLES, "NOPE"]), pairs(SINGLES))
    whole = _run(linear, data, cands, goal, batch_size=4, top=5)
    part = _run(linear, data, cands, goal, batch_size=4, top=5, time_budget=1e-9,
                checkpoint=tmp_path / "ck")  # fmt: skip
    assert not part.meta["complete"]
    resumed = _run(linear, data, cands, goal, batch_size=4, top=5, checkpoint=tmp_path / "ck")
    assert resumed.meta["complete"]
    pd.testing.assert_frame_equal(resumed.table, whole.table)
    pd.testing.assert_frame_equal(resumed.refused, whole.refused)
    np.testing.assert_array_equal(resumed.effects.X, whole.effects.X)
    assert list(resumed.effects.obs_names) == list(whole.effects.obs_names)
    with pytest.raises(ValueError, match="different screen"):
        _run(linear, data, genes(SINGLES), goal, batch_size=4, checkpoint=tmp_path / "ck")


def test_cells_are_generated_for_the_top_hits_only(cosine, data, mean, monkeypatch) -> None:
    calls: list[pd.DataFrame] = []
    original = type(mean).predict

    def spy(self: Any, adata: Any, **kw: Any) -> Any:
        calls.append(pd.DataFrame(kw["conditions"]))
        return original(self, adata, **kw)

    monkeypatch.setattr(type(mean), "predict", spy)
    goal = cosine(np.ones(len(mean.genes_)), mean.genes_)
    result = _run(mean, data, concat(genes(SINGLES), pairs(SINGLES)), goal, top=3, n_cells=7)
    assert len(calls) == 1
    assert calls[0]["perturbation"].tolist() == result.table["perturbation"].head(3).tolist()
    assert result.cells is not None and result.cells.n_obs == 3 * 7
    assert set(result.cells.obs["label"]) == set(result.table["label"].head(3))


def test_a_result_is_written_read_back_and_not_overwritten(cosine, data, linear, tmp_path) -> None:
    goal = cosine(_effect(linear, "TF03"), linear.genes_, pvalues=True)
    result = _run(linear, data, genes([*SINGLES, "NOPE"]), goal, top=3)
    out = result.write(tmp_path / "s")
    names = {p.name for p in out.iterdir()}
    assert {"screen.parquet", "screen.csv", "effects.h5ad", "cells.h5ad", "meta.json",
            "refused.csv"} <= names  # fmt: skip
    back = read_screen(out)
    pd.testing.assert_frame_equal(back.table, result.table)
    pd.testing.assert_frame_equal(back.refused, result.refused)
    assert back.objective.name == "cosine" and back.objective.direction == "higher"
    assert back.context == "A" and back.meta["n_scored"] == len(result.table)
    np.testing.assert_array_equal(back.effects.X, result.effects.X)
    with pytest.raises(RuntimeError, match="cannot score"):
        back.objective.score(np.zeros((1, 2)), ["a", "b"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        result.write(out)
    result.write(out, force=True)


class _IntervalModel:
    """A model whose effects have intervals: effect ``e``, bounds ``e -/+ 1.645 sd``."""

    name = "interval"

    def __init__(self, genes: list[str], effects: dict[str, np.ndarray], sd: float) -> None:
        self.genes_ = genes
        self.effects = effects
        self.sd = sd

    def predict_effects(self, adata: Any, *, conditions: pd.DataFrame, seed: int = 0) -> AnnData:
        x = np.vstack([self.effects[p] for p in conditions["perturbation"]])
        half = 1.6448536 * self.sd
        obs = conditions.reset_index(drop=True).assign(in_domain=0.5, prediction_source="prior")
        obs.index = obs.index.astype(str)
        return AnnData(
            X=x.astype(np.float32), obs=obs, var=pd.DataFrame(index=self.genes_),
            layers={"lower": (x - half).astype(np.float32), "upper": (x + half).astype(np.float32)},
            uns={"interval": 0.9},
        )  # fmt: skip


def test_score_intervals_are_propagated_through_the_objective() -> None:
    rng = np.random.default_rng(0)
    names = [f"g{i}" for i in range(50)]
    effects = {p: rng.normal(size=50) for p in ("a", "b", "c")}
    model = _IntervalModel(names, effects, sd=0.1)

    def total(x: np.ndarray, genes: Any, u: Any) -> np.ndarray:
        return x.sum(axis=1)

    from celltwin.screen import Objective

    goal = Objective("total", "higher", "none", "sum of effects", scorer=total)
    result = screen(model, AnnData(np.zeros((1, 1), dtype=np.float32)), candidates=genes(["a", "b", "c"]), objective=goal,
                    context="X", progress=False)  # fmt: skip
    table = result.table
    assert (table["lower"] < table["score"]).all() and (table["score"] < table["upper"]).all()
    # The sum's sd is 0.1 * sqrt(50) = 0.71: the 90% interval is about 2 x 1.645 x 0.71 = 2.3.
    width = (table["upper"] - table["lower"]).to_numpy()
    assert np.all((width > 1.2) & (width < 3.5)), width
    assert result.meta["interval"] == 0.9
    assert (table["in_domain"] == 0.5).all() and (table["prediction_source"] == "prior").all()
    assert result.cells is None  # not a cell model


def test_a_measured_only_screen_needs_no_model(cosine) -> None:
    profiles = AnnData(
        X=np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32),
        obs=pd.DataFrame(index=["p", "q", "r"]),
        var=pd.DataFrame(index=["g1", "g2"]),
    )
    result = screen(None, None, candidates=measured(profiles), context="any",
                    objective=cosine(np.array([1.0, 0.0]), ["g1", "g2"]),
                    progress=False)  # fmt: skip
    assert result.table["label"].tolist() == ["p", "q", "r"]
    assert result.cells is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"context": ""}, "'context' must be a non-empty string"),
        ({"context": "Z"}, "context 'Z' has no control cells.*Fix: pass context='A'"),
        ({"top": 0}, "'top' must be an integer >= 1"),
        ({"batch_size": 2.5}, "'batch_size' must be an integer"),
        ({"time_budget": -1}, "'time_budget' must be seconds > 0"),
        ({"candidates": ["TF02"]}, "'candidates' must be Candidates"),
        ({"objective": "reverse"}, "'objective' lacks"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_fix(cosine, data, linear, kwargs, match) -> None:
    args: dict[str, Any] = {
        "candidates": genes(["TF02"]),
        "objective": cosine(_effect(linear, "TF02"), linear.genes_),
        "context": "A",
        "progress": False,
        **kwargs,
    }
    with pytest.raises((ValueError, TypeError), match=match):
        screen(linear, data.adata, **args)


def test_a_tiny_transition_model_gives_intervals_domain_and_sources(cosine, data) -> None:
    from celltwin.models import TransitionModel
    from celltwin.screen import representable

    tiny = dict(n_members=2, max_steps=10, hidden=8, n_latent=6, cells=8, patience=1)
    model = TransitionModel(**tiny, progress=False).fit(data.adata)
    cands = representable(model)
    assert {"TF02", "TF03", "TF03+TF06"} <= set(cands.table["perturbation"])
    goal = cosine(np.ones(len(model.genes_)), model.genes_)
    result = _run(model, data, concat(cands, genes(["TF03+TF04"])), goal, top=2, n_cells=4)
    table = result.table.set_index("label")
    assert set(table["prediction_source"]) <= set(PREDICTION_SOURCES)
    assert table.loc["TF03+TF04", "prediction_source"] == "composed"
    assert np.isfinite(table.loc["TF03+TF04", "lower"]) and np.isfinite(
        table.loc["TF03+TF04", "upper"]
    )
    assert table["in_domain"].between(0, 1).all()
    assert result.cells is not None and result.cells.n_obs == 2 * 4


def test_a_drug_library_lets_a_model_with_fingerprints_screen_unseen_drugs(cosine, tmp_path):
    from celltwin.models import fit
    from celltwin.screen import drugs as drug_candidates
    from celltwin.simulate import simulate

    smiles = {
        "aspirin": "CC(=O)OC1=CC=CC=C1C(=O)O",
        "caffeine": "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
        "paracetamol": "CC(=O)NC1=CC=C(O)C=C1",
    }
    adata = simulate(
        n_genes=20, n_tfs=4, contexts=("A",), n_perturbations=2, combinations=0, seed=1
    ).adata
    names = sorted(set(adata.obs["perturbation"].astype(str)) - {"control"})
    adata.obs["perturbation"] = (
        adata.obs["perturbation"].astype(str).replace(dict(zip(names, smiles, strict=False)))
    )
    adata.obs["perturbation_type"] = np.where(
        adata.obs["perturbation"] == "control", "control", "drug"
    )
    known = tmp_path / "two.csv"
    known.write_text("".join(f"{k},{v}\n" for k, v in list(smiles.items())[:2]))
    library = pd.DataFrame({"name": list(smiles), "smiles": list(smiles.values())})
    tiny = dict(n_members=1, max_steps=10, hidden=8, n_latent=6, cells=8, patience=1)
    goal = cosine(np.ones(adata.n_vars), list(adata.var_names))

    def run(cands: Candidates) -> ScreenResult:
        model = fit(adata, params=tiny, drugs=known, progress=False, split_key=None)
        return screen(model, adata, candidates=cands, objective=goal, context="A", progress=False)

    with_library = run(drug_candidates(library, [1.0]))
    assert with_library.refused.empty
    row = with_library.table.set_index("label").loc["paracetamol:1"]
    assert row["prediction_source"] == "prior" and row["dose"] == "1"
    without = run(genes(["paracetamol"]))
    assert without.refused["label"].tolist() == ["paracetamol"]


def test_a_model_with_a_batched_n_cells_path_gets_n_cells(cosine) -> None:
    seen: list[int] = []

    class Faster(_IntervalModel):
        def predict_effects(self, adata, *, conditions, seed=0, n_cells=None):  # type: ignore[override]
            seen.append(n_cells)
            return super().predict_effects(adata, conditions=conditions, seed=seed)

    names = ["g0", "g1"]
    model = Faster(names, {"a": np.ones(2), "b": -np.ones(2)}, sd=0.1)
    result = screen(model, AnnData(np.zeros((1, 1), dtype=np.float32)), context="X",
                    candidates=genes(["a", "b"]), objective=cosine(np.ones(2), names),
                    n_cells=33, progress=False)  # fmt: skip
    assert seen == [33] and result.table["label"].tolist() == ["a", "b"]


def test_ensemble_members_carry_how_genes_move_together_into_the_score_interval() -> None:
    """Members e - 0.5 and e + 0.5 on every gene, and an interval no wider than the members'
    spread: the sum's interval is the members' sums (+- 0.5 x 50 genes), far wider than
    independent draws per gene would give (+- 1.645 x 0.5 x sqrt(50) = +- 5.8)."""
    from celltwin.screen import Objective

    class Members(_IntervalModel):
        def predict_effects(self, adata, *, conditions, seed=0, members=False):  # type: ignore[override]
            out = super().predict_effects(adata, conditions=conditions, seed=seed)
            x = np.asarray(out.X, dtype=np.float64)
            out.layers["member0"], out.layers["member1"] = x - 0.5, x + 0.5
            out.layers["sd"] = np.full(x.shape, 0.5)
            return out

    names = [f"g{i}" for i in range(50)]
    model = Members(names, {"a": np.zeros(50)}, sd=0.5)
    goal = Objective("total", "higher", "none", "sum", scorer=lambda x, g, u: x.sum(axis=1))
    result = screen(model, AnnData(np.zeros((1, 1), dtype=np.float32)), context="X",
                    candidates=genes(["a"]), objective=goal, progress=False)  # fmt: skip
    row = result.table.iloc[0]
    np.testing.assert_allclose([row["lower"], row["upper"]], [-25.0, 25.0], atol=1e-3)


def test_a_nonlinear_score_keeps_its_interval_around_it() -> None:
    """``specific`` (max |effect| / sd) grows under sampled noise; the interval is centred on
    the score of the mean effect, so it holds the score."""
    from celltwin.screen import get_objective

    rng = np.random.default_rng(1)
    names = [f"g{i}" for i in range(30)]
    model = _IntervalModel(names, {p: rng.normal(size=30) for p in "abcd"}, sd=0.3)
    result = screen(model, AnnData(np.zeros((1, 1), dtype=np.float32)), context="X",
                    candidates=genes(list("abcd")), objective=get_objective("specific"),
                    progress=False)  # fmt: skip
    table = result.table
    assert (table["lower"] <= table["score"]).all() and (table["score"] <= table["upper"]).all()
    assert (table["upper"] > table["lower"]).all()
