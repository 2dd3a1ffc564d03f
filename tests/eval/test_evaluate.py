"""evaluate(): agreement with the array-level path, baselines, ceiling, validation, files."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import (
    CONTEXT,
    CONTROL,
    CRISPRI,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    SPLIT,
    TEST,
    TRAIN,
    UNS_KEY,
)
from celltwin.eval import (
    Evaluation,
    build_inputs,
    compute_metrics,
    evaluate,
    evaluate_files,
    mean_of_centroids,
    rank_sum_test,
    split_half_ceiling,
    summarize,
    vcc_score,
    write_vcc,
)
from celltwin.eval._de_constant import constant_group_de
from celltwin.eval._result import FILES
from celltwin.io import ValidationError

# The array-level path (build_inputs + compute_metrics) is the reference for these metrics.
PSEUDOBULK_AND_DE = [
    "mae",
    "mse",
    "des",
    "pds",
    "pearson_delta",
    "pearson_delta_top20_de",
    "mse_top20_de",
    "centroid_accuracy",
    "spearman",
    "top50_up_overlap",
    "n_sig_spearman",
]


def _adata(X, labels, genes, context="K562") -> ad.AnnData:
    labels = np.asarray(labels)
    obs = pd.DataFrame(
        {
            PERTURBATION: labels,
            PERTURBATION_TYPE: np.where(labels == CONTROL, CONTROL, CRISPRI),
            CONTEXT: context,
        },
        index=[f"{context}_{i}" for i in range(len(labels))],
    )
    a = ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs)
    a.var_names = list(genes)
    return a


@pytest.fixture(scope="module")
def data(sim):
    return {
        "truth": _adata(sim.true_X, sim.true_labels, sim.genes),
        "good": _adata(sim.good_X, sim.pred_labels, sim.genes),
        "shuffled": _adata(sim.shuffled_X, sim.pred_labels, sim.genes),
        "train": _adata(sim.train_X, sim.train_labels, sim.genes),
    }


def _values(result: Evaluation, metric: str) -> np.ndarray:
    frame = result.per_perturbation
    return frame.loc[frame["metric"] == metric].sort_values("perturbation")["value"].to_numpy()


def test_model_values_equal_the_array_level_path(sim, data) -> None:
    result = evaluate(
        data["truth"], data["good"], metrics=PSEUDOBULK_AND_DE, ceiling=False, n_boot=50
    )
    inputs = build_inputs(
        sim.good_X.astype(np.float32),
        sim.true_X.astype(np.float32),
        pred_labels=sim.pred_labels,
        true_labels=sim.true_labels,
        genes=sim.genes,
    )
    expected = compute_metrics(inputs, metrics=PSEUDOBULK_AND_DE)
    for name, values in expected.items():
        if values.ndim == 0:
            got = result.aggregate.set_index("metric").loc[name, "value"]
            assert got == pytest.approx(float(values), abs=1e-12), name
        else:
            np.testing.assert_allclose(_values(result, name), values, atol=1e-12, err_msg=name)
    # Summary = mean over perturbations, with a CI around it.
    pds = result.summary["pds"]
    assert pds["mean"] == pytest.approx(expected["pds"].mean())
    assert pds["ci_low"] <= pds["mean"] <= pds["ci_high"]
    assert pds["n"] == len(np.unique(sim.true_labels)) - 1


def test_scgen_r2_metrics_and_their_ceiling_equal_a_direct_computation(sim, data) -> None:
    """r2 of mean expression, on all genes and on the top-100 DE genes of the truth's own
    rank-sum test; the ceiling is the same two metrics on split halves of the truth."""
    names = ["r2_mean_all", "r2_mean_top100_de"]
    result = evaluate(data["truth"], data["good"], metrics=names, n_repeats=2, seed=3, n_boot=10)
    perts = np.unique(sim.true_labels[sim.true_labels != CONTROL])

    def means(X, labels):
        return np.array([X[labels == p].astype(np.float64).mean(axis=0) for p in perts])

    pred, true = means(sim.good_X, sim.pred_labels), means(sim.true_X, sim.true_labels)
    de = rank_sum_test(sim.true_X.astype(np.float32), sim.true_labels).select(perts)
    score = np.sign(de.log2_fold_change) * -np.log10(np.maximum(de.pvalue, 1e-300))
    for i, _ in enumerate(perts):
        top = np.argsort(-score[i], kind="stable")[:100]
        expected = {
            "r2_mean_all": np.corrcoef(pred[i], true[i])[0, 1] ** 2,
            "r2_mean_top100_de": np.corrcoef(pred[i, top], true[i, top])[0, 1] ** 2,
        }
        for name, value in expected.items():
            assert _values(result, name)[i] == pytest.approx(value, rel=1e-9), name
    direct = split_half_ceiling(
        sim.true_X.astype(np.float32), sim.true_labels, genes=sim.genes, metrics=names,
        n_repeats=2, seed=3,
    ).mean()  # fmt: skip
    ceiling = result.ceiling_values
    for name in names:
        got = ceiling.loc[ceiling["metric"] == name].sort_values(PERTURBATION)["value"]
        np.testing.assert_allclose(got.to_numpy(), direct[name], rtol=1e-12, err_msg=name)
    # Not computed unless named; interaction_pearson needs inputs cells do not give.
    default = evaluate(data["truth"], data["good"], ceiling=False, n_boot=10)
    assert not set(names) & set(default.summary)
    skipped = evaluate(
        data["truth"], data["good"], metrics=["mae", "interaction_pearson"], ceiling=False,
        n_boot=10,
    )  # fmt: skip
    assert "interaction_pearson" in skipped.skipped


def test_distributional_metrics_equal_the_array_level_path(sim, data) -> None:
    result = evaluate(
        data["truth"], data["good"], metrics=["energy_distance", "mmd"], ceiling=False, n_boot=20
    )
    inputs = build_inputs(
        sim.good_X.astype(np.float32),
        sim.true_X.astype(np.float32),
        pred_labels=sim.pred_labels,
        true_labels=sim.true_labels,
        genes=sim.genes,
        kinds=("pseudobulk", "cells"),
    )
    expected = compute_metrics(inputs, metrics=["energy_distance", "mmd"])
    for name, values in expected.items():
        np.testing.assert_allclose(_values(result, name), values, rtol=1e-9, err_msg=name)
    # The control baseline's cells are real cells, the mean baseline's all one point: both worse.
    assert (
        result.baselines["control"]["energy_distance"]["mean"]
        > result.summary["energy_distance"]["mean"]
    )


def test_perfect_prediction_scores_best_and_beats_both_baselines(data) -> None:
    truth = data["truth"]
    result = evaluate(truth, truth.copy(), train=data["train"], ceiling=False, n_boot=50)
    assert np.all(_values(result, "mae") == 0)
    assert np.all(_values(result, "pds") == 1)
    assert np.allclose(_values(result, "pearson_delta"), 1)
    for metric in ("mae", "pds", "des", "mse"):
        higher = result.params["higher_is_better"][metric]
        model = result.summary[metric]["mean"]
        for base in ("control", "mean"):
            other = result.baselines[base][metric]["mean"]
            assert (model > other) if higher else (model < other), (metric, base)
    assert 0.0 < result.scores["vcc_score"] <= 1.0


def test_vcc_score_and_mean_baseline_follow_cell_eval(sim, data) -> None:
    """The mean baseline scored as cell-eval builds it: copies of the centroid mean + controls."""
    result = evaluate(
        data["truth"], data["good"], train=data["train"], metrics=["mae", "des", "pds"],
        ceiling=False, n_boot=20,
    )  # fmt: skip
    profile = mean_of_centroids(sim.train_X.astype(np.float32), sim.train_labels)
    is_ctrl = sim.true_labels == CONTROL
    baseline_X = np.where(is_ctrl[:, None], sim.true_X, profile[None, :].astype(np.float32))
    inputs = build_inputs(
        baseline_X.astype(np.float64),
        sim.true_X.astype(np.float32),
        pred_labels=sim.true_labels,
        true_labels=sim.true_labels,
        genes=sim.genes,
    )
    expected = compute_metrics(inputs, metrics=["mae", "des", "pds"])
    base = result.baseline_values.query("baseline == 'mean'")
    for name, values in expected.items():
        got = base.loc[base["metric"] == name].sort_values("perturbation")["value"].to_numpy()
        np.testing.assert_allclose(got, values, atol=1e-6, err_msg=name)
    means = {m: result.summary[m]["mean"] for m in ("mae", "des", "pds")}
    b = {m: result.baselines["mean"][m]["mean"] for m in ("mae", "des", "pds")}
    assert result.scores["vcc_score"] == pytest.approx(
        vcc_score(**means, baseline_mae=b["mae"], baseline_des=b["des"], baseline_pds=b["pds"])
    )


def test_constant_group_de_equals_the_test_on_copies() -> None:
    rng = np.random.default_rng(3)
    # Ties everywhere: rounded values, many zeros, profile values equal to control values.
    control = np.round(rng.gamma(0.6, 1.0, size=(25, 12)), 1) * (rng.random((25, 12)) < 0.6)
    profiles = np.vstack([control[0], np.zeros(12), control.mean(axis=0), np.full(12, 0.3)])
    n_cells = np.array([3, 7, 1, 10])
    groups = np.array(["A", "B", "C", "D"])
    got = constant_group_de(profiles, sp.csr_matrix(control), n_cells=n_cells, groups=groups)
    X = np.vstack([np.repeat(profiles, n_cells, axis=0), control])
    labels = np.append(np.repeat(groups, n_cells), [CONTROL] * len(control))
    expected = rank_sum_test(X, labels)
    for field in ("statistic", "pvalue", "fdr", "log2_fold_change"):
        np.testing.assert_allclose(
            getattr(got, field), getattr(expected, field), rtol=1e-10, atol=1e-12, err_msg=field
        )


def test_control_baseline_de_is_the_test_of_identical_samples(data) -> None:
    truth = data["truth"]
    control = truth.X[truth.obs[PERTURBATION].to_numpy() == CONTROL][:40]
    X = np.vstack([control, control])
    labels = np.array(["A"] * 40 + [CONTROL] * 40)
    expected = rank_sum_test(X, labels)
    assert np.all(expected.pvalue == 1) and np.all(expected.log2_fold_change == 0)
    assert np.all(expected.statistic == 40 * 40 / 2)
    result = evaluate(truth, data["good"], metrics=["des"], ceiling=False, n_boot=10)
    assert result.baselines["control"]["des"]["mean"] == 0.0


def test_prediction_without_controls_uses_the_truths(sim, data) -> None:
    truth, good = data["truth"], data["good"]
    no_ctrl = good[good.obs[PERTURBATION] != CONTROL].copy()
    with_truth_ctrl = ad.concat([no_ctrl, truth[truth.obs[PERTURBATION] == CONTROL]])
    metrics = ["mae", "des", "pds", "pearson_delta"]
    a = evaluate(truth, no_ctrl, metrics=metrics, ceiling=False, n_boot=20)
    b = evaluate(truth, with_truth_ctrl, metrics=metrics, ceiling=False, n_boot=20)
    assert a.params["pred_control"] == "truth"
    assert b.params["pred_control"] == "prediction"
    assert any("no control cells" in note for note in a.params["notes"])
    for m in metrics:
        np.testing.assert_allclose(_values(a, m), _values(b, m), atol=1e-12, err_msg=m)


def _pseudobulk(cells: ad.AnnData) -> ad.AnnData:
    """The group means of a cells prediction, as a pseudobulk prediction."""
    labels = cells.obs[PERTURBATION].astype(str).to_numpy()
    groups = np.unique(labels)
    means = np.vstack([cells.X[labels == g].mean(axis=0) for g in groups])
    pb = _adata(means, groups, cells.var_names)
    pb.uns[UNS_KEY] = {"prediction": {"kind": "pseudobulk", "model": "toy"}}
    return pb


def test_pseudobulk_prediction_gets_profile_metrics_only(data) -> None:
    good = data["good"]
    pb = _pseudobulk(good)
    metrics = ["mae", "pds", "pearson_delta", "des", "energy_distance"]
    result = evaluate(data["truth"], pb, metrics=metrics, ceiling=False, n_boot=20)
    cells = evaluate(
        data["truth"], good, metrics=["mae", "pds", "pearson_delta"], ceiling=False, n_boot=20
    )
    assert set(result.skipped) == {"des", "energy_distance"}
    assert "pseudobulk" in result.skipped["des"]
    assert result.params["model"] == "toy"
    for m in ("mae", "pds", "pearson_delta"):
        np.testing.assert_allclose(_values(result, m), _values(cells, m), atol=1e-6, err_msg=m)


def test_systema_metrics_need_train(data) -> None:
    result = evaluate(
        data["truth"], data["good"], metrics=["mae", "systema_pearson_delta"], ceiling=False,
        n_boot=10,
    )  # fmt: skip
    assert "train=" in result.skipped["systema_pearson_delta"]
    with_train = evaluate(
        data["truth"], data["good"], train=data["train"], metrics=["systema_pearson_delta"],
        ceiling=False, n_boot=10,
    )  # fmt: skip
    assert np.isfinite(with_train.summary["systema_pearson_delta"]["mean"])


def test_genes_are_matched_by_name(data) -> None:
    truth, good = data["truth"], data["good"]
    order = np.random.default_rng(0).permutation(good.n_vars)
    shuffled = good[:, order].copy()
    a = evaluate(truth, shuffled, metrics=["mae", "des", "pds"], ceiling=False, n_boot=10)
    b = evaluate(truth, good, metrics=["mae", "des", "pds"], ceiling=False, n_boot=10)
    pd.testing.assert_frame_equal(a.per_perturbation, b.per_perturbation)


def test_ceiling_is_the_split_half_ceiling_of_the_truth(sim, data) -> None:
    result = evaluate(
        data["truth"], data["good"], metrics=["mae", "pds"], n_repeats=2, seed=4, n_boot=30
    )
    direct = split_half_ceiling(
        sim.true_X.astype(np.float32), sim.true_labels, genes=sim.genes,
        metrics=["mae", "pds"], n_repeats=2, seed=4,
    )  # fmt: skip
    expected = summarize(direct.mean()["mae"], n_boot=30, seed=4)
    assert result.ceiling["mae"]["mean"] == pytest.approx(expected.mean)
    assert result.ceiling["mae"]["ci_high"] == pytest.approx(expected.ci_high)
    no_ceiling = evaluate(data["truth"], data["good"], metrics=["mae"], ceiling=False, n_boot=10)
    assert no_ceiling.ceiling == {}


def test_contexts_are_scored_separately(sim, data) -> None:
    truth, good, shuffled = data["truth"], data["good"], data["shuffled"]
    other_truth = _adata(sim.shuffled_X, sim.true_labels, sim.genes, context="HepG2")
    other_pred = _adata(sim.true_X, sim.pred_labels, sim.genes, context="HepG2")
    both = evaluate(
        ad.concat([truth, other_truth]), ad.concat([good, other_pred]),
        metrics=["mae", "des", "pds"], ceiling=False, n_boot=10,
    )  # fmt: skip
    single = evaluate(truth, good, metrics=["mae", "des", "pds"], ceiling=False, n_boot=10)
    assert set(both.per_perturbation[CONTEXT]) == {"K562", "HepG2"}
    k562 = both.per_perturbation.query("context == 'K562'").reset_index(drop=True)
    pd.testing.assert_frame_equal(k562, single.per_perturbation)
    assert both.summary["pds"]["n"] == 2 * single.summary["pds"]["n"]
    assert shuffled is not None


def test_doses_are_separate_units(data) -> None:
    truth, good = data["truth"].copy(), data["good"].copy()
    for a in (truth, good):
        pert = a.obs[PERTURBATION].astype(str).to_numpy()
        # Alternate cells of each perturbation between two doses.
        rank = a.obs.groupby(PERTURBATION, observed=True).cumcount().to_numpy()
        a.obs[DOSE] = np.where(pert == CONTROL, "", np.where(rank % 2 == 0, "0.1", "1"))
    result = evaluate(truth, good, metrics=["mae", "pds"], ceiling=False, n_boot=10)
    frame = result.per_perturbation
    assert list(frame.columns) == [PERTURBATION, CONTEXT, DOSE, "metric", "value"]
    n_perts = truth.obs[PERTURBATION].nunique() - 1
    assert len(frame.query("metric == 'mae'")) == 2 * n_perts
    assert set(frame[DOSE]) == {"0.1", "1"}


# --- validation -------------------------------------------------------------------------------------


def test_missing_genes_are_listed(data) -> None:
    pred = data["good"][:, 5:].copy()
    with pytest.raises(ValidationError, match="lacks 5 of the truth's 120 genes") as err:
        evaluate(data["truth"], pred, ceiling=False)
    assert "G000" in str(err.value)


def test_non_finite_values_are_refused(data) -> None:
    pred = data["good"].copy()
    pred.X[3, 4] = np.nan
    pred.X[5, 6] = np.inf
    with pytest.raises(ValidationError, match=r"2 value\(s\) are NaN or infinite"):
        evaluate(data["truth"], pred, ceiling=False)


def test_counts_are_refused(data) -> None:
    truth = data["truth"].copy()
    truth.X = np.rint(np.expm1(truth.X))
    with pytest.raises(ValidationError, match="counts"):
        evaluate(truth, data["good"], ceiling=False)


def test_missing_perturbations_are_listed_or_dropped(sim, data) -> None:
    good = data["good"]
    gone = sorted(set(sim.true_labels) - {CONTROL})[:2]
    pred = good[~good.obs[PERTURBATION].isin(gone)].copy()
    with pytest.raises(ValidationError, match="2 perturbation") as err:
        evaluate(data["truth"], pred, ceiling=False)
    assert all(g in str(err.value) for g in gone)
    assert "allow_missing=True" in str(err.value)
    result = evaluate(
        data["truth"], pred, metrics=["mae"], ceiling=False, n_boot=10, allow_missing=True
    )
    assert set(result.per_perturbation[PERTURBATION]).isdisjoint(gone)
    assert len(result.params["dropped"]["absent_from_prediction"]) == 2


def test_missing_controls_and_empty_contexts_are_refused(data) -> None:
    truth, good = data["truth"], data["good"]
    with pytest.raises(ValidationError, match="no control cells in context 'K562'"):
        evaluate(truth[truth.obs[PERTURBATION] != CONTROL].copy(), good, ceiling=False)
    only_ctrl = _adata(truth.X[:20], [CONTROL] * 20, truth.var_names, context="HepG2")
    with pytest.raises(ValidationError, match="control cells only"):
        evaluate(ad.concat([truth, only_ctrl]), good, ceiling=False)
    # Controls in one context of the prediction but not in the other.
    other = _adata(good.X, good.obs[PERTURBATION], good.var_names, context="HepG2")
    other = other[other.obs[PERTURBATION] != CONTROL]
    truth2 = _adata(truth.X, truth.obs[PERTURBATION], truth.var_names, context="HepG2")
    with pytest.raises(ValidationError, match="none in context 'HepG2'"):
        evaluate(ad.concat([truth, truth2]), ad.concat([good, other]), ceiling=False)


def test_unknown_metric_and_non_canonical_input(data) -> None:
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        evaluate(data["truth"], data["good"], metrics=["nope"])
    bare = data["good"].copy()
    del bare.obs[CONTEXT]
    with pytest.raises(ValidationError, match="lacks obs column"):
        evaluate(data["truth"], bare)


# --- results ------------------------------------------------------------------------------------


def test_write_produces_the_files(data, tmp_path: Path) -> None:
    result = evaluate(
        data["truth"], data["good"], train=data["train"], metrics=["mae", "des", "pds"],
        n_repeats=1, n_boot=20,
    )  # fmt: skip
    out = result.write(tmp_path / "eval")
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == [PERTURBATION, CONTEXT, "metric", "value"]
    assert len(metrics) == 3 * result.summary["mae"]["n"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["pds"]["mean"] == pytest.approx(result.summary["pds"]["mean"])
    assert set(summary["baselines"]) == {"control", "mean"}
    assert "mae" in summary["ceiling"] and "vcc_score" in summary["scores"]
    # eval writes tables; the HTML report is celltwin.pl's (tests/pl/test_evaluation.py).
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    wide = result.to_frame()
    assert list(wide.columns) == ["mae", "des", "pds"]
    assert wide.shape[0] == result.summary["mae"]["n"]


def test_write_leaves_nothing_behind_on_failure(data, tmp_path: Path, monkeypatch) -> None:
    result = evaluate(data["truth"], data["good"], metrics=["mae"], ceiling=False, n_boot=10)

    def broken(self):
        raise RuntimeError("summary failed")

    monkeypatch.setattr(Evaluation, "to_dict", broken)  # after metrics.csv is staged
    with pytest.raises(RuntimeError, match="summary failed"):
        result.write(tmp_path / "eval", extra_files={"note.txt": "x"})
    assert list(tmp_path.iterdir()) == []


def test_compare_is_paired_and_directional(data) -> None:
    metrics = ["mae", "pds"]
    good = evaluate(data["truth"], data["good"], metrics=metrics, ceiling=False, n_boot=200)
    bad = evaluate(data["truth"], data["shuffled"], metrics=metrics, ceiling=False, n_boot=200)
    table = good.compare(bad)
    assert table.loc["mae", "mean_diff"] < 0 and table.loc["mae", "ci_high"] < 0
    assert table.loc["mae", "share_self_better"] == 1.0
    assert table.loc["pds", "mean_diff"] > 0
    # The t interval holds the mean difference; every perturbation better: a small p.
    assert table.loc["mae", "t_low"] < table.loc["mae", "mean_diff"] < table.loc["mae", "t_high"]
    assert table.loc["mae", "wilcoxon_p"] < 0.05
    same = good.compare(good)
    assert (same["mean_diff"] == 0).all() and (same["share_tied"] == 1).all()
    assert (same["wilcoxon_p"] == 1).all()


def test_evaluate_files_reads_any_convention(data, tmp_path: Path) -> None:
    truth, good = data["truth"], data["good"]
    write_vcc(truth, tmp_path / "truth.h5ad")  # cell-eval's layout: target_gene, non-targeting
    good.write_h5ad(tmp_path / "pred.h5ad")  # canonical
    result = evaluate_files(
        tmp_path / "truth.h5ad", tmp_path / "pred.h5ad", out=tmp_path / "out",
        metrics=["mae", "pds"], ceiling=False, n_boot=10, context="K562",
    )  # fmt: skip
    direct = evaluate(truth, good, metrics=["mae", "pds"], ceiling=False, n_boot=10)
    np.testing.assert_allclose(_values(result, "mae"), _values(direct, "mae"), atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)
    assert result.params["files"]["truth"].endswith("truth.h5ad")


def test_evaluate_files_cuts_a_split_file_into_truth_and_training_cells(data, tmp_path) -> None:
    truth, good = data["truth"], data["good"]
    train = data["train"]
    perturbed = train[train.obs[PERTURBATION] != CONTROL]
    perturbed.obs_names = [f"train_{n}" for n in perturbed.obs_names]
    whole = ad.concat([truth, perturbed])
    held = (whole.obs[PERTURBATION] != CONTROL).to_numpy() & whole.obs_names.isin(truth.obs_names)
    whole.obs[SPLIT] = pd.Categorical(np.where(held, TEST, TRAIN), categories=[TRAIN, TEST])
    whole.write_h5ad(tmp_path / "split.h5ad")
    good.write_h5ad(tmp_path / "pred.h5ad")
    metrics = ["mae", "pearson_delta", "systema_pearson_delta"]
    kw = {"metrics": metrics, "ceiling": False, "n_boot": 10}
    result = evaluate_files(
        tmp_path / "split.h5ad", tmp_path / "pred.h5ad", out=tmp_path / "out",
        split_key=SPLIT, **kw,
    )  # fmt: skip
    # By hand: the held-out perturbations with the controls; training = controls + the rest.
    expected = evaluate(
        truth, good, train=ad.concat([truth[~held[: truth.n_obs]], perturbed]), **kw
    )
    for metric in metrics:
        np.testing.assert_allclose(_values(result, metric), _values(expected, metric), atol=1e-6)
    assert result.params["files"]["split_key"] == SPLIT
    # A separate training file without the split column is used whole.
    train.write_h5ad(tmp_path / "train.h5ad")
    result = evaluate_files(
        tmp_path / "split.h5ad", tmp_path / "pred.h5ad", out=tmp_path / "out2",
        train=tmp_path / "train.h5ad", split_key=SPLIT, **kw,
    )  # fmt: skip
    expected = evaluate(truth, good, train=train, **kw)
    np.testing.assert_allclose(
        _values(result, "systema_pearson_delta"), _values(expected, "systema_pearson_delta"),
        atol=1e-6,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [("missing.h5ad", None, "no such file"), ("pred.csv", "a,b\n", "reads .h5ad files"),
     ("broken.h5ad", "not hdf5\n", "cannot read the file as h5ad")],
)  # fmt: skip
def test_evaluate_files_explains_a_bad_prediction_file(
    data, tmp_path: Path, name: str, content: str | None, match: str
) -> None:
    data["truth"].write_h5ad(tmp_path / "truth.h5ad")
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises((FileNotFoundError, ValidationError), match=match):
        evaluate_files(tmp_path / "truth.h5ad", tmp_path / name, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_ceiling_does_not_depend_on_the_prediction_kind(data) -> None:
    # The ceiling is the truth predicting itself: a pseudobulk prediction, which cannot be
    # scored on the DE metrics, still gets their ceiling, equal to a cells prediction's.
    good = data["good"]
    pb = _pseudobulk(good)
    metrics = ["mae", "des", "pds"]
    result = evaluate(data["truth"], pb, metrics=metrics, n_repeats=2, n_boot=20)
    cells = evaluate(data["truth"], good, metrics=metrics, n_repeats=2, n_boot=20)
    assert "des" in result.skipped and "des" not in result.summary
    assert set(result.ceiling) == set(cells.ceiling) == set(metrics)
    pd.testing.assert_frame_equal(result.ceiling_values, cells.ceiling_values)
    assert 0 < result.ceiling["des"]["mean"] <= 1
    summary = result.tables()["summary"].set_index(["source", "metric"])
    assert summary.loc[("ceiling", "des"), "higher_is_better"]
