"""The Norman 2019 and McFaline-Figueroa 2023 suites: folds, what is held out, GI scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, split_combination
from celltwin.benchmark import get_suite
from celltwin.benchmark._suites._norman import norman_gi_table, norman_interaction_scores
from celltwin.data import DownloadError


def _data(name: str) -> AnnData:
    try:
        return get_suite(name).task.data({})
    except (DownloadError, FileNotFoundError, OSError) as err:
        pytest.skip(f"data of {name} not available here ({err})")


def _split(name: str, fold: str) -> pd.DataFrame:
    task = get_suite(name).task
    adata = _data(name)
    work = AnnData(obs=adata.obs.copy(), uns={})
    work.obs_names = adata.obs_names
    task.assign(work, fold, task.options({}))
    obs = work.obs[[CONTEXT, PERTURBATION, SPLIT]].astype(str)
    if f"{SPLIT}_category" in work.obs:
        obs["category"] = work.obs[f"{SPLIT}_category"].astype(str)
    return obs


def _held(obs: pd.DataFrame) -> set[str]:
    return set(obs.loc[obs[SPLIT] == "test", PERTURBATION])


def _trained(obs: pd.DataFrame) -> set[str]:
    return set(obs.loc[obs[SPLIT] == "train", PERTURBATION]) - {CONTROL}


def test_norman_combination_folds_have_every_gears_category() -> None:
    name = "norman2019-combinations"
    folds = get_suite(name).task.folds()
    assert folds == [f"split{i}" for i in range(5)]
    for fold in folds:
        obs = _split(name, fold)
        test = obs[obs[SPLIT] == "test"]
        cats = dict(zip(test[PERTURBATION], test["category"], strict=False))
        assert {"combo_seen0", "combo_seen1", "combo_seen2", "unseen_single"} <= set(cats.values())
        trained = _trained(obs)
        for pert, cat in cats.items():
            parts = split_combination(pert)
            if cat.startswith("combo_seen"):
                assert sum(p in trained for p in parts) == int(cat[-1]), (fold, pert)
            # Nothing in training contains a held-out single.
            if cat == "unseen_single":
                assert not any(pert in split_combination(t) for t in trained)


def test_norman_unseen_single_folds_partition_the_singles() -> None:
    name = "norman2019-unseen-single"
    held_singles: list[str] = []
    for fold in get_suite(name).task.folds():
        obs = _split(name, fold)
        held = _held(obs)
        singles = {p for p in held if len(split_combination(p)) == 1}
        held_singles += sorted(singles)
        # Every pair touching a held-out single is held out with it.
        assert not any(set(split_combination(t)) & singles for t in _trained(obs))
    adata = _data(name)
    all_singles = {p for p in set(adata.obs[PERTURBATION].astype(str)) - {CONTROL} if "+" not in p}
    assert len(held_singles) == len(set(held_singles)) == 18
    assert set(held_singles) == all_singles


def test_mcfaline_line_folds_hold_out_one_line_with_and_without_few_shot() -> None:
    name = "mcfaline2023-heldout-line"
    folds = get_suite(name).task.folds()
    assert folds == ["A172", "T98G", "U87MG", "A172+3shot", "T98G+3shot", "U87MG+3shot"]
    for fold in folds:
        obs = _split(name, fold)
        line = fold.split("+")[0]
        test = obs[obs[SPLIT] == "test"]
        assert set(test[CONTEXT]) == {line}
        in_line = obs[(obs[CONTEXT] == line) & (obs[PERTURBATION] != CONTROL)]
        shots = set(in_line.loc[in_line[SPLIT] == "train", PERTURBATION])
        assert len(shots) == (3 if "shot" in fold else 0)
        assert len(set(test[PERTURBATION])) == 9 - len(shots)
        assert not shots & set(test[PERTURBATION])


def test_mcfaline_unseen_knockdowns_are_absent_from_every_line() -> None:
    name = "mcfaline2023-unseen-knockdown"
    held_all: list[str] = []
    for fold in get_suite(name).task.folds():
        obs = _split(name, fold)
        held = _held(obs)
        held_all += sorted(held)
        assert not held & _trained(obs)
        test = obs[obs[SPLIT] == "test"]
        assert set(test[CONTEXT]) == {"A172", "T98G", "U87MG"}
    assert len(held_all) == len(set(held_all)) == 9


def _predict_pairs(fold, kind: str) -> AnnData:
    """Mean cells of each held-out condition: the truth, or the sum of the trained singles."""
    x, obs = [], []
    genes = list(fold.genes)
    control = np.asarray(fold.query[:, genes].X.mean(axis=0)).ravel()
    labels = fold.train.obs[PERTURBATION].astype(str).to_numpy()
    truth_labels = fold.truth.obs[PERTURBATION].astype(str).to_numpy()
    for pert in fold.conditions[PERTURBATION].astype(str):
        observed = np.asarray(fold.truth[truth_labels == pert][:, genes].X.mean(axis=0)).ravel()
        parts = split_combination(pert)
        if kind == "additive" and all(p in set(labels) for p in parts):
            singles = [
                np.asarray(fold.train[labels == p][:, genes].X.mean(axis=0)).ravel() - control
                for p in parts
            ]
            x.append(control + np.sum(singles, axis=0))
        else:
            x.append(observed)
        obs.append(("K562", pert))
    frame = pd.DataFrame(
        obs, columns=[CONTEXT, PERTURBATION], index=[str(i) for i in range(len(obs))]
    )
    return AnnData(np.array(x), obs=frame, var=pd.DataFrame(index=genes))


def test_norman_interaction_scores_and_fits_of_the_observed_and_additive_pairs() -> None:
    task = get_suite("norman2019-combinations").task
    _data("norman2019-combinations")
    fold = task.fold_data("split0", smoke=True)
    preds = {"oracle": _predict_pairs(fold, "truth"), "additive": _predict_pairs(fold, "additive")}
    scores = norman_interaction_scores(fold, preds, None)
    by = scores.groupby("model")["value"].apply(np.asarray)
    assert len(by["oracle"]) >= 1
    np.testing.assert_allclose(by["oracle"], 1.0, atol=1e-9)  # the observed interaction itself
    np.testing.assert_allclose(by["additive"], 0.0, atol=1e-9)  # nothing beyond the sum
    table = norman_gi_table(fold, preds).set_index(["model", "pair"])
    observed = table.xs("observed")
    # The oracle predicts the observed pair on the observed singles: the same fit.
    np.testing.assert_allclose(
        table.xs("oracle").loc[observed.index, "magnitude"], observed["magnitude"], atol=1e-9
    )
    # The additive prediction of a seen pair is its singles' sum: c1 = c2 = 1.
    additive = table.xs("additive")
    seen2 = [p for p in additive.index if (additive.loc[p, "c1"] - 1) ** 2 < 1e-12]
    assert seen2
    np.testing.assert_allclose(additive.loc[seen2, "c2"], 1.0, atol=1e-9)


def test_transition_gets_the_prior_features_it_takes_through_fit_params() -> None:
    """``transition.fit`` forwards ``perturbation_features`` to ``_fit``: it must get them."""
    from celltwin.benchmark._suites._cell_task import accepts

    assert accepts("transition", "perturbation_features")
    assert accepts("linear", "perturbation_features")
    assert not accepts("mean", "perturbation_features")


def test_the_norman_runner_scores_interactions() -> None:
    _data("norman2019-combinations")
    results = get_suite("norman2019-combinations").run_fold(
        "split0", models=["additive"], seed=0, smoke=True
    )
    inter = results[results["metric"] == "interaction_pearson"]
    assert len(inter) >= 1 and set(inter["model"]) == {"additive"}
    # Not 0: the additive model clips shifted cells at 0, so its mean is not the exact sum.
    assert np.all(np.abs(inter["value"]) <= 1)
