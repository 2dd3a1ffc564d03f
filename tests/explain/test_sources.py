"""``explain.sources``: what each prediction leaned on, on folds where the answer is known."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SOURCE_COLUMNS, SPLIT, TEST, TRAIN
from celltwin.explain import describe_sources, explainable_models, sources
from celltwin.models import (
    ContextShiftBaseline,
    MeanBaseline,
    NearestPerturbationBaseline,
    TransitionModel,
    UnseenConditionError,
)
from celltwin.simulate import simulate

TINY = dict(n_members=1, max_steps=20, hidden=16, n_latent=8, cells=16, patience=2, progress=False)


@pytest.fixture(scope="module")
def twin_context() -> ad.AnnData:
    """Contexts A, B, C and ``A2``, a copy of A's cells: A2's perturbed cells are held out, so
    the context it borrows from is, by construction, A."""
    sim = simulate(
        n_genes=60, n_tfs=8, contexts=("A", "B", "C"), n_perturbations=4, combinations=0,
        cells_per_condition=40, seed=3,
    )  # fmt: skip
    adata = sim.adata
    twin = adata[adata.obs[CONTEXT] == "A"].copy()
    twin.obs[CONTEXT] = "A2"
    twin.obs_names = [f"{n}-twin" for n in twin.obs_names]
    both = ad.concat([adata, twin], merge="same")
    held = (both.obs[CONTEXT] == "A2") & (both.obs[PERTURBATION] != CONTROL)
    both.obs[SPLIT] = pd.Categorical(np.where(held, TEST, TRAIN))
    return both


def test_a_held_out_context_borrows_from_its_twin(twin_context) -> None:
    model = TransitionModel(**TINY).fit(twin_context)
    table = sources(model, twin_context, top=None)
    assert list(table.columns) == list(SOURCE_COLUMNS)
    perts = sorted(set(twin_context.obs[PERTURBATION]) - {CONTROL})
    assert sorted(table["condition"].unique()) == [f"A2:{p}" for p in perts]
    for condition, rows in table.groupby("condition"):
        assert set(rows["kind"]) == {"cell states"}, condition
        np.testing.assert_allclose(rows["weight"].sum(), 1.0, atol=1e-12)
        top = rows.iloc[0]
        assert top["context"] == "A" and top["weight"] > 0.5, rows
        assert top["source"] == condition.split(":")[1]
    # The same answer from the model's own method, and the kind the prediction reports.
    again = model.sources(twin_context, conditions=[("A2", perts[0])], top=1)
    assert again.iloc[0]["context"] == "A"
    effects = model.predict_effects(twin_context, conditions=[("A2", perts[0])])
    assert effects.obs["source"].iloc[0] == "context"
    text = describe_sources(table)
    assert text[f"A2:{perts[0]}"].startswith(f"A2:{perts[0]}: predicted mostly from {perts[0]}")
    assert "in A (cell states, weight" in text[f"A2:{perts[0]}"]


def test_without_cell_states_the_kernel_weighs_the_twin_most(twin_context) -> None:
    model = TransitionModel(**TINY, cell_states=False).fit(twin_context)
    table = sources(model, twin_context, top=None)
    assert set(table["kind"]) == {"kernel"}
    for _, rows in table.groupby("condition"):
        np.testing.assert_allclose(rows["weight"].sum(), 1.0, atol=1e-12)
        assert rows.iloc[0]["context"] == "A"


def test_measured_conditions_are_their_own_source_and_top_truncates(twin_context) -> None:
    model = TransitionModel(**TINY).fit(twin_context)
    table = sources(model, conditions=[("B", "control"), ("B", _first_pert(twin_context))])
    assert table.to_dict("records") == [
        {
            "condition": f"B:{_first_pert(twin_context)}",
            "context": "B",
            "kind": "measured",
            "source": _first_pert(twin_context),
            "weight": 1.0,
        }
    ]
    assert len(sources(model, twin_context, top=2).groupby("condition").size().unique()) == 1
    assert sources(model, twin_context, top=2).groupby("condition").size().max() == 2


def _first_pert(adata: ad.AnnData) -> str:
    return sorted(set(adata.obs[PERTURBATION]) - {CONTROL})[0]


@pytest.fixture(scope="module")
def copied_features() -> tuple[ad.AnnData, pd.DataFrame, str, str]:
    """One perturbation held out in every context, its prior features a copy of another's."""
    sim = simulate(
        n_genes=50, n_tfs=8, contexts=("A", "B"), n_perturbations=6, combinations=0,
        cells_per_condition=30, seed=4,
    )  # fmt: skip
    adata = sim.adata
    perts = sorted(set(adata.obs[PERTURBATION]) - {CONTROL})
    held, twin = perts[0], perts[3]
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(len(perts), 5)), index=perts)
    features.loc[held] = features.loc[twin].to_numpy()
    adata.obs[SPLIT] = pd.Categorical(np.where(adata.obs[PERTURBATION] == held, TEST, TRAIN))
    return adata, features, held, twin


def test_an_unseen_perturbation_is_nearest_to_the_one_whose_features_it_copies(
    copied_features,
) -> None:
    adata, features, held, twin = copied_features
    model = TransitionModel(**TINY).fit(adata, perturbation_features=features)
    table = sources(model, adata)
    for _, rows in table.groupby("condition"):
        assert set(rows["kind"]) == {"features"}
        assert rows.iloc[0]["source"] == twin, rows
        np.testing.assert_allclose(rows.iloc[0]["weight"], 1.0, atol=1e-12)
        assert rows.iloc[0]["context"] == "A, B"
        assert (rows["weight"].iloc[1:] < 1.0).all()
    effects = model.predict_effects(adata, conditions=[("A", held)])
    assert effects.obs["source"].iloc[0] == "features"
    text = describe_sources(table)
    assert f"nearest in prior features to {twin}" in text[f"A:{held}"]

    nearest = NearestPerturbationBaseline().fit(adata, perturbation_features=features)
    table = sources(nearest, adata, top=None)
    assert table["source"].tolist() == [twin, twin]
    assert table["kind"].tolist() == ["neighbour", "neighbour"]
    assert table["weight"].tolist() == [1.0, 1.0]


def test_context_shift_weighs_the_other_contexts_equally(twin_context) -> None:
    model = ContextShiftBaseline().fit(twin_context)
    table = sources(model, twin_context, top=None)
    for _, rows in table.groupby("condition"):
        assert sorted(rows["context"]) == ["A", "B", "C"]
        np.testing.assert_allclose(rows["weight"], 1 / 3)
    with pytest.raises(UnseenConditionError, match="no other context"):
        model.sources(conditions=[("A", "never")])


def test_saved_models_explain_and_bad_calls_are_refused(twin_context, tmp_path) -> None:
    model = ContextShiftBaseline().fit(twin_context)
    model.save(tmp_path / "m")
    assert sources(tmp_path / "m", twin_context).equals(sources(model, twin_context))
    twin_context.write_h5ad(tmp_path / "cells.h5ad")
    assert sources(model, str(tmp_path / "cells.h5ad")).equals(sources(model, twin_context))
    assert {"transition", "nearest_perturbation", "context_shift"} <= set(explainable_models())
    assert "mean" not in explainable_models()
    with pytest.raises(ValueError, match="cannot say what its predictions borrowed"):
        sources(MeanBaseline().fit(twin_context), twin_context)
    with pytest.raises(ValueError, match="pass conditions"):
        sources(model)
    with pytest.raises(ValueError, match="'top' must be a positive integer"):
        sources(model, twin_context, top=0)
    transition = TransitionModel(**TINY).fit(twin_context)
    with pytest.raises(ValueError, match=r"context\(s\) \['Z'\] were not trained on"):
        transition.sources(conditions=[("Z", _first_pert(twin_context))])
    with pytest.raises(ValueError, match="lacks column"):
        describe_sources(pd.DataFrame({"condition": ["x"]}))


def test_doses_and_combinations_name_their_doses_and_parts() -> None:
    sim = simulate(
        n_genes=40, n_tfs=6, contexts=("A",), n_perturbations=4, combinations=2, drugs=1,
        doses=(0.1, 1.0, 10.0), cells_per_condition=20, seed=6,
    )  # fmt: skip
    adata = sim.adata
    obs = adata.obs
    pert, dose = obs[PERTURBATION].astype(str), obs["dose"].astype(str)
    combo = sorted(p for p in set(pert) if "+" in p and p.count("+") == 1)[0]
    drug = sorted(p for p in set(pert[dose != ""]))[0]
    held = (pert == combo) | ((pert == drug) & (dose == "1"))
    adata.obs[SPLIT] = pd.Categorical(np.where(held, TEST, TRAIN))
    model = TransitionModel(**TINY).fit(adata)
    table = sources(model, adata, top=None)
    doses = table[table["condition"] == f"A:{drug}:1"]
    assert set(doses["kind"]) == {"dose"}
    assert sorted(doses["source"]) == [f"{drug}@0.1", f"{drug}@10"]
    np.testing.assert_allclose(doses["weight"].sum(), 1.0)
    parts = table[table["condition"] == f"A:{combo}"]
    assert parts["kind"].tolist() == ["part: measured", "part: measured"]
    assert sorted(parts["source"]) == sorted(combo.split("+"))
    np.testing.assert_allclose(parts["weight"], 0.5)


def test_what_predict_predicts_from_a_saved_model_is_what_sources_explains(
    twin_context, tmp_path
) -> None:
    from celltwin.models import fit, predict

    params = {k: v for k, v in TINY.items() if k != "progress"}
    fit(twin_context, model="transition", params=params, progress=False, out=tmp_path / "model")
    pred = predict(tmp_path / "model", twin_context)
    table = sources(tmp_path / "model", twin_context)
    predicted = {f"{c}:{p}" for c, p in zip(pred.obs[CONTEXT], pred.obs[PERTURBATION], strict=True)}
    assert set(table["condition"]) == predicted - {f"A2:{CONTROL}"}
    assert set(table.groupby("condition")["context"].first()) == {"A"}


def test_one_command_explains_a_prediction_file_with_its_sources(twin_context, tmp_path) -> None:
    """``explain_file(prediction, model=...)`` (``celltwin explain PRED --model DIR``) names what
    each predicted condition leaned on: here, by construction, context A."""
    from celltwin.explain import explain_file
    from celltwin.models import fit, predict

    params = {k: v for k, v in TINY.items() if k != "progress"}
    fit(twin_context, model="transition", params=params, progress=False, out=tmp_path / "model")
    pred = predict(tmp_path / "model", twin_context)
    pred.write_h5ad(tmp_path / "pred.h5ad")
    twin_context.write_h5ad(tmp_path / "data.h5ad")
    genes = list(twin_context.var_names)
    result = explain_file(tmp_path / "pred.h5ad", data=tmp_path / "data.h5ad",
                          model=tmp_path / "model", gene_sets={"first": genes[:10]}, nets=("progeny",),
                          network=("dorothea",))  # fmt: skip
    assert result.sources is not None
    top = result.sources.groupby("condition").first()
    perts = sorted(set(twin_context.obs[PERTURBATION]) - {CONTROL})
    assert sorted(top.index) == [f"A2:{p}" for p in perts]
    assert set(top["context"]) == {"A"}
    assert "sources" in result.tables()
