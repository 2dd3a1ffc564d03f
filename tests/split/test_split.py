"""Split strategies: deterministic, row-order independent, leakage-free, and stored on the data."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import celltwin.split
from celltwin._keys import (
    CONTEXT,
    CONTROL,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    SPLIT,
    TEST,
    TRAIN,
    UNS_KEY,
    VAL,
    join_combination,
    split_combination,
)
from celltwin.split import (
    SplitLeakageError,
    apply_split,
    carve_validation,
    check_leakage,
    held_out_cells,
    split_combinations,
    split_contexts,
    split_doses,
    split_drugs,
    split_info,
    split_perturbations,
    train_cells,
)

# --- builders of small canonical AnnData -------------------------------------------------------


def _anndata(obs: pd.DataFrame, seed: int = 0) -> ad.AnnData:
    obs = obs.reset_index(drop=True)
    obs.index = [f"cell{i:05d}" for i in range(len(obs))]
    x = np.random.default_rng(seed).poisson(1.0, size=(len(obs), 6)).astype(np.float32)
    adata = ad.AnnData(X=x, obs=obs)
    adata.var_names = [f"G{i}" for i in range(adata.n_vars)]
    return adata


def perturbation_data(
    n_perturbations: int = 20, n_contexts: int = 3, cells: int = 3, n_controls: int = 5
) -> ad.AnnData:
    """Every perturbation P00.. in every context C0.., plus control cells per context."""
    rows = []
    for c in range(n_contexts):
        rows += [(CONTROL, "control", f"C{c}")] * n_controls
        for p in range(n_perturbations):
            rows += [(f"P{p:02d}", "crispr_ko", f"C{c}")] * cells
    return _anndata(pd.DataFrame(rows, columns=[PERTURBATION, PERTURBATION_TYPE, CONTEXT]))


def combination_data(
    n_singles: int = 12, n_combos: int = 30, cells: int = 3, partnerless: bool = True
) -> ad.AnnData:
    """Singles S00.., random pairs of them, and (``partnerless``) S00+X where X has no single."""
    rng = np.random.default_rng(42)
    singles = [f"S{i:02d}" for i in range(n_singles)]
    pairs: set[str] = set()
    while len(pairs) < n_combos:
        a, b = rng.choice(n_singles, 2, replace=False)
        pairs.add(join_combination([singles[a], singles[b]]))
    labels = [CONTROL] * 2 + singles + sorted(pairs)
    if partnerless:
        labels.append(join_combination(["X", singles[0]]))
    rows = [
        (p, "control" if p == CONTROL else "crispra", "K562") for p in labels for _ in range(cells)
    ]
    return _anndata(pd.DataFrame(rows, columns=[PERTURBATION, PERTURBATION_TYPE, CONTEXT]))


def drug_data(
    n_drugs: int = 8, doses: tuple[float, ...] = (0.01, 0.1, 1, 10), cells: int = 3
) -> ad.AnnData:
    """Drugs D0.. at every dose in two cell lines, one drug pair, one drug with a single dose."""
    rows = []
    for context in ("A549", "MCF7"):
        rows += [(CONTROL, "control", context, "")] * 4
        for d in range(n_drugs):
            for dose in doses:
                rows += [(f"D{d}", "drug", context, f"{dose:g}")] * cells
        rows += [("D0+D1", "drug", context, "0.1+1"), ("D0+D1", "drug", context, "1+1")] * cells
        rows += [("Z", "drug", context, "5")] * cells
    return _anndata(pd.DataFrame(rows, columns=[PERTURBATION, PERTURBATION_TYPE, CONTEXT, DOSE]))


#: (builder, split function, keyword arguments) for every strategy; all use the seed.
STRATEGIES: dict[str, tuple[Callable[[], ad.AnnData], Callable[..., None], dict[str, Any]]] = {
    "perturbations": (perturbation_data, split_perturbations, {"val_fraction": 0.1}),
    "perturbations_per_context": (
        perturbation_data,
        split_perturbations,
        {"per_context": True, "val_fraction": 0.1},
    ),
    "contexts": (perturbation_data, split_contexts, {"test": "C1", "few_shot": 3}),
    "combinations": (combination_data, split_combinations, {"val_fraction": 0.1}),
    "drugs": (drug_data, split_drugs, {"val_fraction": 0.1}),
    "doses": (drug_data, split_doses, {"which": "random", "n_val": 1}),
}


def _split(name: str, seed: int = 0, adata: ad.AnnData | None = None, **extra: Any) -> ad.AnnData:
    builder, func, kwargs = STRATEGIES[name]
    adata = builder() if adata is None else adata
    func(adata, **kwargs, **extra, seed=seed)
    return adata


def _labels(adata: ad.AnnData, key: str = SPLIT) -> pd.Series:
    return adata.obs[key].astype(str)


def _perturbations_with(adata: ad.AnnData, label: str, key: str = SPLIT) -> set[str]:
    return set(adata.obs.loc[_labels(adata, key) == label, PERTURBATION].astype(str))


# --- determinism and row order -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_same_seed_same_split_different_seed_different(name: str) -> None:
    a, b, c = _split(name, seed=3), _split(name, seed=3), _split(name, seed=4)
    assert _labels(a).equals(_labels(b))
    assert split_info(a) == split_info(b)
    assert not _labels(a).equals(_labels(c))
    assert split_info(a)["seed"] == 3 and split_info(c)["seed"] == 4


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_split_does_not_depend_on_row_order(name: str) -> None:
    adata = STRATEGIES[name][0]()
    shuffled = adata[np.random.default_rng(7).permutation(adata.n_obs)].copy()
    _split(name, adata=adata)
    _split(name, adata=shuffled)
    assert _labels(shuffled).reindex(adata.obs_names).equals(_labels(adata))
    assert split_info(shuffled) == split_info(adata)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_split_is_leakage_free_and_keeps_controls_in_train(name: str) -> None:
    adata = _split(name)
    labels = _labels(adata)
    controls = adata.obs[PERTURBATION].astype(str) == CONTROL
    assert (labels[controls] == TRAIN).all()
    assert (labels == TEST).sum() > 0 and (labels == TRAIN).sum() > 0
    info = split_info(adata)
    assert info["n_cells"] == {k: int((labels == k).sum()) for k in (TRAIN, VAL, TEST)}
    # Independently of the stored parameters: each held-out unit has one label only.
    units = adata.obs.loc[~controls, info["unit"]].astype(str).agg("\x1f".join, axis=1)
    assert (labels[~controls].groupby(units).nunique() == 1).all()
    check_leakage(adata)


# --- held-out perturbations --------------------------------------------------------------------


def test_perturbation_split_holds_out_whole_perturbations_everywhere() -> None:
    adata = perturbation_data(n_perturbations=20)
    split_perturbations(adata, test_fraction=0.2, val_fraction=0.1, seed=0)
    test, val, train = (_perturbations_with(adata, k) for k in (TEST, VAL, TRAIN))
    assert len(test) == 4 and len(val) == 2  # 20 * 0.2, 20 * 0.1
    assert not test & train and not val & train and not test & val
    assert train == {CONTROL} | {f"P{i:02d}" for i in range(20)} - test - val
    # Held out in every context: each test perturbation has its cells in all three contexts.
    held = adata.obs[_labels(adata) == TEST]
    assert (held.groupby(PERTURBATION, observed=True)[CONTEXT].nunique() == 3).all()
    assert split_info(adata)["test"] == {PERTURBATION: sorted(test)}


def test_perturbation_split_explicit_lists() -> None:
    adata = perturbation_data()
    split_perturbations(adata, test=["P03", "P07"], val=["P01"], seed=0)
    assert _perturbations_with(adata, TEST) == {"P03", "P07"}
    assert _perturbations_with(adata, VAL) == {"P01"}
    split_perturbations(adata, test=["P03"], val_fraction=0.1, seed=0, key_added="other")
    assert _perturbations_with(adata, TEST, key="other") == {"P03"}
    assert len(_perturbations_with(adata, VAL, key="other")) == 2
    assert "P03" not in _perturbations_with(adata, VAL, key="other")


def test_per_context_split_draws_each_context_independently() -> None:
    adata = perturbation_data(n_perturbations=20, n_contexts=3)
    split_perturbations(adata, test_fraction=0.25, val_fraction=0.0, per_context=True, seed=1)
    obs = adata.obs.assign(label=_labels(adata))
    per_context = {
        c: set(g.loc[g.label == TEST, PERTURBATION].astype(str))
        for c, g in obs.groupby(CONTEXT, observed=True)
    }
    assert all(len(s) == 5 for s in per_context.values())
    assert len({frozenset(s) for s in per_context.values()}) > 1
    # A perturbation held out in one context may be trained on in another, never in the same one.
    pairs = obs[obs[PERTURBATION] != CONTROL].groupby([CONTEXT, PERTURBATION], observed=True).label
    assert (pairs.nunique() == 1).all()
    assert split_info(adata)["unit"] == [CONTEXT, PERTURBATION]


# --- held-out contexts -------------------------------------------------------------------------


def test_context_split_with_few_shot_k() -> None:
    adata = perturbation_data(n_perturbations=10, n_contexts=3)
    split_contexts(adata, test="C1", val=["C2"], few_shot=2, seed=0)
    obs = adata.obs.assign(label=_labels(adata))
    perturbed = obs[PERTURBATION] != CONTROL
    for context, label in (("C1", TEST), ("C2", VAL)):
        cells = obs[(obs[CONTEXT] == context) & perturbed]
        assert cells.loc[cells.label == TRAIN, PERTURBATION].nunique() == 2  # the few-shot ones
        assert set(cells.label) == {TRAIN, label}
    assert (obs.loc[obs[CONTEXT] == "C0", "label"] == TRAIN).all()
    assert (obs.loc[~perturbed, "label"] == TRAIN).all()  # held-out contexts keep their controls
    info = split_info(adata)
    assert info["test_contexts"] == ["C1"] and info["val_contexts"] == ["C2"]
    few = set(zip(info["few_shot"][CONTEXT], info["few_shot"][PERTURBATION], strict=True))
    assert {c for c, _ in few} == {"C1", "C2"} and len(few) == 4
    trained = obs[perturbed & (obs.label == TRAIN) & (obs[CONTEXT] != "C0")]
    assert set(zip(trained[CONTEXT], trained[PERTURBATION], strict=True)) == few


def test_held_out_cells_are_the_held_out_conditions_with_their_contexts_controls() -> None:
    adata = perturbation_data(n_perturbations=10, n_contexts=3)
    split_contexts(adata, test="C1", val=["C2"], few_shot=2, seed=0)
    obs = adata.obs.assign(label=_labels(adata))
    control = obs[PERTURBATION] == CONTROL
    for label, context in ((TEST, "C1"), (VAL, "C2")):
        truth = held_out_cells(adata, split=label)
        expected = obs[(obs.label == label) | (control & (obs[CONTEXT] == context))]
        assert list(truth.obs_names) == list(expected.index)
        np.testing.assert_array_equal(truth.X, adata[expected.index].X)
        # Every held-out cell's context has its controls; no other context's cells come along.
        assert set(truth.obs[CONTEXT]) == {context}
    train = train_cells(adata)
    assert list(train.obs_names) == list(obs.index[obs.label == TRAIN])
    # An unseen-perturbation split: the held-out perturbations of every context with controls.
    adata = perturbation_data(n_perturbations=10, n_contexts=2)
    split_perturbations(adata, test_fraction=0.3, seed=1)
    truth = held_out_cells(adata)
    assert (truth.obs[PERTURBATION] == CONTROL).sum() == (adata.obs[PERTURBATION] == CONTROL).sum()
    assert set(truth.obs[PERTURBATION]) - {CONTROL} == _perturbations_with(adata, TEST)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: held_out_cells(a, key="other"), "obs has no split column 'other'"),
        (lambda a: held_out_cells(a, split=TRAIN), "is not a held-out label: use 'val' or 'test'"),
        (lambda a: held_out_cells(a, split=VAL), "no cell has obs['split'] == 'val'"),
        (lambda a: train_cells(a, key="other"), "obs has no split column 'other'"),
    ],
)
def test_split_parts_refuse_what_they_cannot_cut(call: Callable, message: str) -> None:
    adata = perturbation_data(n_perturbations=6, n_contexts=2)
    split_contexts(adata, test="C1", seed=0)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(adata)


def test_context_split_with_explicit_few_shot_and_none() -> None:
    adata = perturbation_data(n_perturbations=6, n_contexts=2)
    split_contexts(adata, test="C0", few_shot=["P02", "P04"])
    held = adata.obs[(adata.obs[CONTEXT] == "C0") & (adata.obs[PERTURBATION] != CONTROL)]
    assert _perturbations_with(adata[held.index], TRAIN) == {"P02", "P04"}
    split_contexts(adata, test="C0", key_added="zero_shot")
    assert (_labels(adata, "zero_shot")[held.index] == TEST).all()


# --- combinations ------------------------------------------------------------------------------


def test_combination_split_categories_are_populated_and_correct() -> None:
    adata = combination_data()
    split_combinations(
        adata, test_single_fraction=0.25, test_seen2_fraction=0.2, val_fraction=0.1, seed=0
    )
    obs = adata.obs.assign(label=_labels(adata))
    perturbation = obs[PERTURBATION].astype(str)
    train_singles = {p for p in perturbation[obs.label == TRAIN] if len(split_combination(p)) == 1}
    held_singles = {p for p in perturbation[obs.label == TEST] if len(split_combination(p)) == 1}
    assert len(held_singles) == 3  # 12 * 0.25
    # Reference categories, recomputed from the training cells alone.
    expected = {}
    for p in set(perturbation[obs.label != TRAIN]):
        parts = split_combination(p)
        seen = sum(c in train_singles for c in parts)
        expected[p] = "unseen_single" if len(parts) == 1 else f"combo_seen{seen}"
    info = split_info(adata)
    stored = dict(
        zip(info["categories"][PERTURBATION], info["categories"]["category"], strict=True)
    )
    assert stored == expected
    assert {"combo_seen0", "combo_seen1", "combo_seen2"} <= set(stored.values())
    column = obs.loc[obs.label != TRAIN, f"{SPLIT}_category"].astype(str)
    assert (column == perturbation[obs.label != TRAIN].map(expected)).all()
    assert obs.loc[obs.label == TRAIN, f"{SPLIT}_category"].isna().all()
    # Nothing about a held-out single reaches training through a combination.
    for p in set(perturbation[obs.label == TRAIN]):
        assert not set(split_combination(p)) & held_singles
    # Val combinations keep their singles in training (X has no single: S00+X is at most seen1).
    val = set(perturbation[obs.label == VAL])
    assert val and all(stored[p] == ("combo_seen1" if "X" in p else "combo_seen2") for p in val)
    assert info["held_out_components"][TEST] == sorted(held_singles)


def test_combination_split_with_explicit_singles() -> None:
    adata = combination_data()
    split_combinations(adata, test_singles=["S00", "S01"], test_seen2_fraction=0, val_fraction=0)
    test = _perturbations_with(adata, TEST)
    touching = {
        p
        for p in set(adata.obs[PERTURBATION].astype(str))
        if {"S00", "S01"} & set(split_combination(p))
    }
    assert test == touching  # only the held-out singles and the combinations containing them
    assert "S00+X" in test


def test_rerunning_under_the_same_key_drops_the_old_category_column() -> None:
    adata = combination_data()
    split_combinations(adata)
    assert f"{SPLIT}_category" in adata.obs
    split_perturbations(adata)
    assert f"{SPLIT}_category" not in adata.obs
    assert split_info(adata)["strategy"] == "perturbations"


# --- drugs and doses ---------------------------------------------------------------------------


def test_drug_split_holds_out_every_dose_and_every_combination_of_a_drug() -> None:
    adata = drug_data()
    split_drugs(adata, test=["D1"], val=["D5"], seed=0)
    assert _perturbations_with(adata, TEST) == {"D1", "D0+D1"}
    assert _perturbations_with(adata, VAL) == {"D5"}
    test_cells = adata.obs[_labels(adata) == TEST]
    assert test_cells.loc[test_cells[PERTURBATION] == "D1", DOSE].nunique() == 4
    for p in _perturbations_with(adata, TRAIN):
        assert not {"D1", "D5"} & set(split_combination(p))
    split_drugs(adata, test_fraction=0.25, val_fraction=0.0, seed=2, key_added="frac")
    assert len(split_info(adata, key="frac")["held_out_components"][TEST]) == 2  # 9 drugs * 0.25


@pytest.mark.parametrize("which", ["highest", "lowest"])
def test_dose_split_holds_out_the_extreme_doses(which: str) -> None:
    adata = drug_data()
    split_doses(adata, which=which, n_test=1, n_val=1)
    obs = adata.obs.assign(label=_labels(adata))
    drugs = obs[(obs[PERTURBATION_TYPE] == "drug") & (obs[PERTURBATION] != "Z")]
    for drug, cells in drugs.groupby(PERTURBATION, observed=True):
        if drug in split_info(adata)["too_few_doses"]:
            continue
        doses = cells[DOSE].map(lambda d: tuple(float(x) for x in d.split("+")))
        ordered = sorted(set(doses))
        pick = -1 if which == "highest" else 0
        step = -1 if which == "highest" else 1
        assert set(cells.label[doses == ordered[pick]]) == {TEST}, drug
        if len(ordered) > 2:
            assert set(cells.label[doses == ordered[pick + step]]) == {VAL}, drug
    info = split_info(adata)
    # Z has one dose and D0+D1 two, fewer than n_test + n_val + 1: they stay in training.
    assert info["too_few_doses"] == ["D0+D1", "Z"]
    assert set(obs.label[obs[PERTURBATION].isin(["Z", "D0+D1"])]) == {TRAIN}


def test_dose_split_random_varies_per_drug() -> None:
    adata = drug_data(n_drugs=12)
    split_doses(adata, which="random", n_test=1, seed=5)
    test = adata.obs[_labels(adata) == TEST]
    assert test.groupby(PERTURBATION, observed=True)[DOSE].nunique().eq(1).all()
    assert test[DOSE].nunique() > 1


# --- check_leakage catches corrupted splits ----------------------------------------------------


def _relabel(adata: ad.AnnData, mask: np.ndarray | pd.Series, label: str) -> None:
    values = _labels(adata).to_numpy(dtype=object)
    values[np.asarray(mask)] = label
    adata.obs[SPLIT] = pd.Categorical(values, categories=[TRAIN, VAL, TEST])


def _first(adata: ad.AnnData, label: str) -> str:
    return sorted(_perturbations_with(adata, label) - {CONTROL})[0]


def _corrupt_one_test_cell(adata: ad.AnnData) -> None:
    p = _first(adata, TEST)
    mask = (adata.obs[PERTURBATION] == p).to_numpy()
    mask[np.flatnonzero(mask)[1:]] = False
    _relabel(adata, mask, TRAIN)


def _corrupt_whole_test_perturbation(adata: ad.AnnData) -> None:
    _relabel(adata, adata.obs[PERTURBATION] == _first(adata, TEST), TRAIN)


def _corrupt_undeclared_test(adata: ad.AnnData) -> None:
    _relabel(adata, adata.obs[PERTURBATION] == _first(adata, TRAIN), TEST)


def _corrupt_control(adata: ad.AnnData) -> None:
    _relabel(adata, adata.obs[PERTURBATION] == CONTROL, TEST)


def _corrupt_val_test_overlap(adata: ad.AnnData) -> None:
    params = adata.uns[UNS_KEY]["splits"][SPLIT]
    params[VAL] = {k: list(v) for k, v in params[TEST].items()}


CORRUPTIONS = {
    "one_test_cell_in_train": (_corrupt_one_test_cell, "have train cells"),
    "whole_test_perturbation_in_train": (_corrupt_whole_test_perturbation, "have train cells"),
    "undeclared_test": (_corrupt_undeclared_test, "not declared"),
    "control_in_test": (_corrupt_control, "control cells"),
    "val_test_overlap": (_corrupt_val_test_overlap, "both val and test"),
}


@pytest.mark.parametrize("name", ["perturbations", "drugs", "doses"])
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_check_leakage_catches_corruption(name: str, corruption: str) -> None:
    adata = _split(name)
    corrupt, message = CORRUPTIONS[corruption]
    corrupt(adata)
    with pytest.raises(SplitLeakageError, match=message):
        check_leakage(adata)


def test_check_leakage_catches_undeclared_training_cells_in_a_held_out_context() -> None:
    adata = perturbation_data(n_perturbations=8)
    split_contexts(adata, test="C1", few_shot=1)
    check_leakage(adata)
    in_c1 = (adata.obs[CONTEXT] == "C1") & (_labels(adata) == TEST)
    pair = adata.obs.loc[in_c1, PERTURBATION].astype(str).iloc[0]
    _relabel(adata, in_c1 & (adata.obs[PERTURBATION] == pair), TRAIN)
    with pytest.raises(SplitLeakageError, match="not declared few-shot"):
        check_leakage(adata)


def test_check_leakage_catches_a_held_out_single_moved_to_training() -> None:
    adata = combination_data()
    split_combinations(adata, seed=0)
    single = split_info(adata)["held_out_components"][TEST][0]
    _relabel(adata, adata.obs[PERTURBATION] == single, TRAIN)
    with pytest.raises(SplitLeakageError) as info:
        check_leakage(adata)
    assert "held-out component" in str(info.value) and "category" in str(info.value)


def test_check_leakage_catches_a_drug_seen_through_a_combination() -> None:
    adata = drug_data()
    split_drugs(adata, test=["D1"], val_fraction=0)
    params = adata.uns[UNS_KEY]["splits"][SPLIT]
    # Declare the combination as training although it contains the held-out drug.
    _relabel(adata, adata.obs[PERTURBATION] == "D0+D1", TRAIN)
    params[TEST] = {PERTURBATION: ["D1"]}
    with pytest.raises(SplitLeakageError, match="contain a held-out component"):
        check_leakage(adata)


# --- carved validation -------------------------------------------------------------------------


def test_carve_validation_takes_from_training_only() -> None:
    adata = perturbation_data(n_perturbations=20)
    split_perturbations(adata, test_fraction=0.2, val_fraction=0.0, seed=0)
    test_before = _labels(adata) == TEST
    train_before = _perturbations_with(adata, TRAIN)
    carve_validation(adata, fraction=0.25, seed=0)
    assert (_labels(adata) == TEST).equals(test_before)
    val = _perturbations_with(adata, VAL)
    assert len(val) == 4 and val <= train_before - {CONTROL}  # 16 training perturbations * 0.25
    info = split_info(adata)
    assert info["carved"] == {"fraction": 0.25, "seed": 0, "n_units": 4}
    assert info[VAL] == {PERTURBATION: sorted(val)}
    with pytest.raises(ValueError, match="already has carved validation"):
        carve_validation(adata)


def test_carve_validation_respects_strategy_rules() -> None:
    combos = combination_data()
    split_combinations(combos, val_fraction=0.0, seed=0)
    categories = split_info(combos)["categories"]
    carve_validation(combos, fraction=0.3)
    val = _perturbations_with(combos, VAL)
    assert val and all("+" in p for p in val)  # combinations only: singles keep their categories
    after = split_info(combos)["categories"]
    kept = dict(zip(after[PERTURBATION], after["category"], strict=True))
    assert all(
        kept[p] == c for p, c in zip(categories[PERTURBATION], categories["category"], strict=True)
    )

    drugs = drug_data()
    split_drugs(drugs, test=["D1"], val_fraction=0.0)
    carve_validation(drugs, fraction=0.2, seed=1)
    val_drugs = split_info(drugs)["held_out_components"][VAL]
    assert val_drugs
    for p in _perturbations_with(drugs, TRAIN):
        assert not set(val_drugs) & set(split_combination(p))

    contexts = perturbation_data(n_perturbations=6)
    split_contexts(contexts, test="C1", few_shot=2)
    few = split_info(contexts)["few_shot"]
    carve_validation(contexts, fraction=0.5)
    val = contexts.obs[_labels(contexts) == VAL]
    assert set(val[CONTEXT]) <= {"C0", "C2"}
    for c, p in zip(few[CONTEXT], few[PERTURBATION], strict=True):
        cells = (contexts.obs[CONTEXT] == c) & (contexts.obs[PERTURBATION] == p)
        assert (_labels(contexts)[cells] == TRAIN).all()


# --- storage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_split_round_trips_through_h5ad(name: str, tmp_path) -> None:
    adata = _split(name, key_added="my_split")
    info = split_info(adata, key="my_split")
    json.dumps(info)  # JSON-serialisable
    assert info["strategy"] == name.removesuffix("_per_context")
    path = tmp_path / "split.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert split_info(back, key="my_split") == info
    assert _labels(back, "my_split").equals(_labels(adata, "my_split"))
    check_leakage(back, key="my_split")
    carve_validation(back, key="my_split", fraction=0.1)  # works on a split read back
    check_leakage(back, key="my_split")


# --- errors ------------------------------------------------------------------------------------


def test_error_names_missing_perturbation_column() -> None:
    adata = perturbation_data()
    adata.obs = adata.obs.rename(columns={PERTURBATION: "gene"})
    with pytest.raises(ValueError, match=r"no 'perturbation' column.*'gene'.*rename"):
        split_perturbations(adata)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 1.5}, r"'test_fraction' must be in \[0, 1\) \(got 1.5\)"),
        ({"val_fraction": -0.1}, r"'val_fraction' must be in \[0, 1\) \(got -0.1\)"),
        ({"test_fraction": 0.6, "val_fraction": 0.5}, "must be < 1"),
        ({"test": ["P99"]}, r"unknown perturbations \['P99'\]: choose from 'P00'"),
        ({"test": ["P01"], "val": ["P01"]}, "in both 'test' and 'val'"),
        ({"test": ["P00", "P01"], "val": ["P02"], "per_context": True}, "per_context=True"),
    ],
)
def test_perturbation_split_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_perturbations(perturbation_data(n_perturbations=5), **kwargs)


def test_not_enough_perturbations() -> None:
    with pytest.raises(ValueError, match=r"not enough perturbations: 2 available.*leaves none"):
        split_perturbations(
            perturbation_data(n_perturbations=2), test_fraction=0.5, val_fraction=0.4
        )
    with pytest.raises(ValueError, match=r"not enough perturbations in context 'C0'"):
        split_perturbations(perturbation_data(n_perturbations=1), per_context=True)


def test_context_split_errors() -> None:
    adata = perturbation_data(n_perturbations=4, n_contexts=2)
    with pytest.raises(
        ValueError, match=r"'test' names unknown contexts \['HeLa'\]: choose from 'C0', 'C1'"
    ):
        split_contexts(adata, test="HeLa")
    with pytest.raises(ValueError, match="leaves no training context"):
        split_contexts(adata, test=["C0", "C1"])
    with pytest.raises(ValueError, match=r"not enough perturbations in context 'C1': it has 4"):
        split_contexts(adata, test="C1", few_shot=4)
    with pytest.raises(ValueError, match=r"'few_shot' names unknown"):
        split_contexts(adata, test="C1", few_shot=["P77"])
    adata.obs = adata.obs.drop(columns=[CONTEXT])
    with pytest.raises(ValueError, match="no 'context' column"):
        split_contexts(adata, test="C1")


def test_combination_and_dose_errors() -> None:
    with pytest.raises(ValueError, match="not enough perturbations for a combination split"):
        split_combinations(perturbation_data())
    with pytest.raises(ValueError, match="could not hold out 1 of 12 singles"):
        # One held-out single cannot make a combo_seen0 when every component has its single.
        split_combinations(combination_data(partnerless=False), test_single_fraction=0.05)
    drugs = drug_data()
    with pytest.raises(ValueError, match=r"not enough doses: no drug has more than 4"):
        split_doses(drugs, n_test=2, n_val=2)
    with pytest.raises(ValueError, match="'which' must be one of"):
        split_doses(drugs, which="middle")  # type: ignore[arg-type]
    drugs.obs[DOSE] = (
        drugs.obs[DOSE]
        .replace({"10": "10.0"})
        .mask(np.arange(drugs.n_obs) % 2 == 0, drugs.obs[DOSE])
    )
    with pytest.raises(ValueError, match="writes one dose two ways"):
        split_doses(drugs)
    with pytest.raises(
        ValueError, match="no perturbed cell has obs\\['perturbation_type'\\] == 'drug'"
    ):
        split_drugs(perturbation_data())
    no_dose = drug_data()
    no_dose.obs = no_dose.obs.drop(columns=[DOSE])
    with pytest.raises(ValueError, match="no 'dose' column"):
        split_doses(no_dose)


def test_check_leakage_without_a_split_and_on_views() -> None:
    adata = perturbation_data()
    with pytest.raises(ValueError, match=r"has no entry 'split'.*key_added='split'"):
        check_leakage(adata)
    with pytest.raises(ValueError, match="is a view"):
        split_perturbations(adata[:10])


def test_unreadable_dose_names_the_column() -> None:
    drugs = drug_data()
    drugs.obs[DOSE] = drugs.obs[DOSE].replace({"10": "10 uM"})
    with pytest.raises(ValueError, match=r"obs\['dose'\]: cannot read canonical dose '10 uM'"):
        split_doses(drugs)


# --- simulated data ----------------------------------------------------------------------------


def test_every_strategy_on_simulated_data(tmp_path) -> None:
    simulate = pytest.importorskip("celltwin.simulate").simulate
    adata = simulate(
        n_genes=30,
        n_tfs=6,
        contexts=("A", "B", "C"),
        n_perturbations=12,
        combinations=8,
        drugs=5,
        drug_combinations=2,
        cells_per_condition=4,
        seed=0,
    ).adata
    split_perturbations(adata, key_added="perturbations")
    split_contexts(adata, test="B", few_shot=2, key_added="contexts")
    split_combinations(adata, test_single_fraction=0.3, key_added="combinations")
    split_drugs(adata, test_fraction=0.2, val_fraction=0.2, key_added="drugs")
    split_doses(adata, which="highest", key_added="doses")
    keys = ["perturbations", "contexts", "combinations", "drugs", "doses"]
    adata.write_h5ad(tmp_path / "sim.h5ad")
    back = ad.read_h5ad(tmp_path / "sim.h5ad")
    for key in keys:
        check_leakage(back, key=key)
        assert split_info(back, key=key) == split_info(adata, key=key)
        labels = _labels(back, key)
        assert (labels[back.obs[PERTURBATION] == CONTROL] == TRAIN).all()
        assert (labels == TEST).any()
    top = back.obs[(back.obs[PERTURBATION_TYPE] == "drug") & (back.obs[DOSE].isin(["10", "10+10"]))]
    assert (_labels(back, "doses")[top.index] == TEST).all()
    categories = set(split_info(back, key="combinations")["categories"]["category"])
    assert {"combo_seen0", "combo_seen1", "combo_seen2", "unseen_single"} <= categories


def test_apply_split_by_name_matches_the_direct_call() -> None:
    direct = perturbation_data()
    split_perturbations(direct, test_fraction=0.25, seed=3)
    by_name = perturbation_data()
    apply_split(by_name, strategy="perturbations", test_fraction=0.25, seed=3)
    assert_frame_equal(_labels(direct).to_frame(), _labels(by_name).to_frame())
    assert set(celltwin.split.STRATEGIES) == {
        "perturbations",
        "contexts",
        "combinations",
        "drugs",
        "doses",
    }


def test_apply_split_names_unknown_strategy_and_option() -> None:
    adata = perturbation_data()
    with pytest.raises(ValueError, match=r"unknown split strategy 'nope'.*perturbations"):
        apply_split(adata, strategy="nope")
    with pytest.raises(
        ValueError, match=r"no option holdout \(--holdout\); its options .*test_fraction"
    ):
        apply_split(adata, strategy="perturbations", holdout=["A"])
