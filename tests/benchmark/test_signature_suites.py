"""Signature suites: splits, no leakage (poisoned held-out rows), metric wiring, reference rows,
the generic file-based suite, and each registered suite on a small subset of the real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin._settings import shared_dir
from celltwin.benchmark import RESULT_COLUMNS, get_suite, run_benchmark
from celltwin.benchmark._suites._rank_scores import (
    _Scored,
    _Truth,
    score_predictions,
    signature_scores,
)
from celltwin.benchmark._suites._signatures import SUITES
from celltwin.benchmark._suites._transfer import (
    REFERENCE,
    fold_predictions,
    run_transfer_fold,
    signature_models,
    transfer_splits,
)
from celltwin.io import RankSignatures, write_signatures
from celltwin.models import get_model

MODELS = signature_models()
REAL = ["replogle2022-k562-to-rpe1", "neurips2023-heldout-celltype", "sciplex3-heldout-line"]


def make_signatures(
    *,
    contexts=("A", "B", "C"),
    n_perts: int = 20,
    n_genes: int = 60,
    ranking: str = "full",
    seed: int = 0,
) -> RankSignatures:
    """Rankings from a shared low-rank response plus context-specific noise."""
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{j}" for j in range(n_genes)], dtype=object)
    base = rng.normal(size=(n_perts, 3)) @ rng.normal(size=(3, n_genes))
    rows = []
    for c in contexts:
        scores = base + 0.7 * rng.normal(size=base.shape)
        for p in range(n_perts):
            order = tuple(genes[np.argsort(-scores[p], kind="stable")])
            full = order if ranking == "full" else order[:20]
            rows.append((c, f"P{p}", ranking, full, full[:5]))
    return RankSignatures(
        pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION, "ranking", "up_full", "up"])
    )


# --- splits ------------------------------------------------------------------------------------


def test_kfold_holds_out_each_eligible_perturbation_once() -> None:
    sigs = make_signatures(n_perts=23)
    splits = transfer_splits(sigs, holdout=["A"], folds=5, split_seed=3)
    tested = [p for s in splits for p in s.test]
    assert sorted(tested) == sorted(sigs.perturbations)
    for s in splits:
        assert set(s.test).isdisjoint(s.few_shot)
        assert set(s.test) | set(s.few_shot) == set(sigs.perturbations)
        assert s.name.startswith("A/fold")


def test_few_shot_sets_partition_when_fraction_is_one_over_folds() -> None:
    sigs = make_signatures(n_perts=20)
    splits = transfer_splits(sigs, holdout=["A", "B"], folds=5, few_shot_fraction=0.2)
    few = [p for s in splits for p in s.few_shot]
    assert sorted(few) == sorted(sigs.perturbations)
    assert all(len(s.few_shot) == 4 and len(s.test) == 16 for s in splits)
    assert splits[0].test_pairs()[CONTEXT].tolist() == ["A"] * 16 + ["B"] * 16


def test_only_transferable_perturbations_are_held_out() -> None:
    sigs = make_signatures(n_perts=12)
    table = sigs.table
    # P0 only in A (nothing to transfer from), P1 missing from A (no truth).
    drop = (table[PERTURBATION] == "P0") & (table[CONTEXT] != "A")
    drop |= (table[PERTURBATION] == "P1") & (table[CONTEXT] == "A")
    sigs = RankSignatures(table.loc[~drop.to_numpy()])
    for s in transfer_splits(sigs, holdout=["A"], folds=3):
        assert "P0" not in s.test + s.few_shot and "P1" not in s.test + s.few_shot


def test_split_options_are_validated() -> None:
    sigs = make_signatures(n_perts=10)
    with pytest.raises(ValueError, match="few_shot_fraction"):
        transfer_splits(sigs, holdout=["A"], few_shot_fraction=0.05)
    with pytest.raises(ValueError, match="holdout_context"):
        transfer_splits(sigs, holdout=["Z"])
    with pytest.raises(ValueError, match="no source context"):
        transfer_splits(sigs, holdout=["A", "B", "C"])


# --- no leakage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ranking", ["full", "top"])
def test_poisoned_heldout_rows_do_not_change_predictions(ranking: str) -> None:
    """Reverse and rename the held-out rows' genes: every model predicts exactly the same."""
    sigs = make_signatures(ranking=ranking)
    split = transfer_splits(sigs, holdout=["A"], folds=4, few_shot_fraction=0.5)[1]
    clean = fold_predictions(sigs, split, models=MODELS)

    table = sigs.table
    hidden = (table[CONTEXT] == "A") & table[PERTURBATION].isin(split.test)
    poison = [("POISON", *reversed(g)) for g in table.loc[hidden, "up_full"]]
    table.loc[hidden, "up_full"] = pd.Series(poison, index=table.index[hidden], dtype=object)
    table.loc[hidden, "up"] = pd.Series(
        [("POISON2",)] * int(hidden.sum()), index=table.index[hidden], dtype=object
    )
    poisoned = fold_predictions(RankSignatures(table), split, models=MODELS)
    for name in MODELS:
        assert list(poisoned[name].var_names) == list(clean[name].var_names)
        assert "POISON" not in set(poisoned[name].var_names)
        np.testing.assert_array_equal(poisoned[name].X, clean[name].X)


def test_training_universe_excludes_genes_only_in_heldout_rows() -> None:
    sigs = make_signatures(n_genes=30, ranking="top")
    split = transfer_splits(sigs, holdout=["A"], folds=4)[0]
    preds = fold_predictions(sigs, split, models=["mean_other_contexts"])
    train = sigs.table.loc[
        ~((sigs.table[CONTEXT] == "A") & sigs.table[PERTURBATION].isin(split.test)).to_numpy()
    ]
    expected = set().union(*train["up_full"])
    assert set(preds["mean_other_contexts"].var_names) == expected


# --- metrics, reference ------------------------------------------------------------------------------


def test_perfect_prediction_scores_one() -> None:
    for ranking in ("full", "top"):
        sigs = make_signatures(n_genes=150)
        if ranking == "top":  # top-120 lists, so the truth defines a top-100
            table = sigs.table
            table["up_full"] = [g[:120] for g in table["up_full"]]
            table["ranking"] = "top"
            sigs = RankSignatures(table)
        scored = _Scored.of(sigs)
        pairs = sigs.table[[CONTEXT, PERTURBATION]].iloc[:5].reset_index(drop=True)
        truth = _Truth.of(scored, scored.rows(pairs))
        res = score_predictions(
            np.nan_to_num(truth.values), truth, pairs=pairs, fold="f", model="oracle"
        )
        assert list(res.columns) == list(RESULT_COLUMNS)
        assert np.allclose(res["value"], 1.0)
        expected = {"spearman", "top50_up", "top100_up", "auroc_top100_up"}
        if ranking == "full":
            expected |= {"top50_down", "top100_down"}
        assert set(res["metric"]) == expected


def test_top_truth_spearman_uses_listed_genes_only() -> None:
    """Order of the listed genes right, unlisted genes pushed on top: Spearman 1, overlaps low."""
    table = make_signatures(n_genes=200).table
    table["up_full"] = [g[:120] for g in table["up_full"]]  # 80 genes tied below each list
    table["ranking"] = "top"
    scored = _Scored.of(sigs := RankSignatures(table))
    pairs = sigs.table[[CONTEXT, PERTURBATION]].iloc[:3].reset_index(drop=True)
    truth = _Truth.of(scored, scored.rows(pairs))
    pred = np.where(truth.values > 0, truth.values, 10.0)
    res = score_predictions(pred, truth, pairs=pairs, fold="f", model="m")
    by = res.groupby("metric")["value"].mean()
    assert by["spearman"] == pytest.approx(1.0)
    assert by["top50_up"] == 0.0
    assert by["top100_up"] == pytest.approx(20 / 100)  # 80 unlisted genes fill the top 100


def test_reference_is_the_mean_over_sources_and_equals_mean_other_contexts_for_one() -> None:
    sigs = make_signatures(contexts=("A", "B"), ranking="top", n_genes=80)
    split = transfer_splits(sigs, holdout=["A"], folds=4)[0]
    res = run_transfer_fold(sigs, split, models=["mean_other_contexts"])
    key = ["context", "perturbation", "metric"]
    ref = res[res["model"] == REFERENCE].set_index(key)["value"].sort_index()
    moc = res[res["model"] == "mean_other_contexts"].set_index(key)["value"].sort_index()
    pd.testing.assert_series_equal(ref, moc, check_names=False)

    three = make_signatures(n_genes=80)
    split = transfer_splits(three, holdout=["A"], folds=4)[0]
    res = run_transfer_fold(three, split, models=[])
    scored = _Scored.of(three)
    pairs = split.test_pairs()
    truth = _Truth.of(scored, scored.rows(pairs))
    per_source = []
    for source in ("B", "C"):
        x = np.nan_to_num(scored.values[scored.rows(pairs.assign(context=source))])
        per_source.append(score_predictions(x, truth, pairs=pairs, fold=split.name, model="r"))
    expected = (per_source[0]["value"].to_numpy() + per_source[1]["value"].to_numpy()) / 2
    np.testing.assert_allclose(res["value"].to_numpy(), expected)
    assert set(res["model"]) == {REFERENCE}


def test_signature_scores_mark_untested_genes() -> None:
    sigs = RankSignatures.from_mapping(
        {"d1": {"up_full": ["a", "b", "c"], "up": ["a"]}, "d2": {"up_full": ["d", "a"], "up": []}},
        context="X",
        ranking="full",
    )
    x = signature_scores(sigs).to_df()
    assert x.loc["X/d1", "a"] == 1.0 and np.isnan(x.loc["X/d1", "d"])
    assert x.loc["X/d2", "a"] == -1.0 and np.isnan(x.loc["X/d2", "b"])


# --- the generic suite ---------------------------------------------------------------------------------


def test_generic_suite_reads_files(tmp_path) -> None:
    sigs = make_signatures(n_perts=12, n_genes=150)  # > 100 genes: top-100 AUROC is defined
    paths = {}
    for c in sigs.contexts:
        paths[c] = write_signatures(sigs.subset(contexts=[c]), tmp_path / f"{c}.json.gz")
    suite = get_suite("signature-transfer")
    assert suite.kind == "signatures" and suite.primary_metric == "spearman"
    files = [f"A={paths['A']}", str(paths["B"]), ("C", paths["C"])]
    folds = suite.folds(signatures=files, holdout_context="B", n_folds=3)
    assert folds == ["B/fold0", "B/fold1", "B/fold2"]
    res = suite.run_fold(folds[1], signatures=files, holdout_context="B", n_folds=3, seed=1)
    assert list(res.columns) == list(RESULT_COLUMNS)
    assert set(res["model"]) == {*MODELS, REFERENCE}
    assert set(res["context"]) == {"B"} and res["perturbation"].nunique() == 4
    assert (res["fold"] == "B/fold1").all()
    assert np.isfinite(res["value"]).all()
    every = suite.folds(signatures=files, n_folds=2)  # None: each context in turn
    assert every == ["A/fold0", "A/fold1", "B/fold0", "B/fold1", "C/fold0", "C/fold1"]
    with pytest.raises(ValueError, match="needs 'signatures'"):
        suite.folds()
    with pytest.raises(TypeError, match="unknown suite option"):
        suite.folds(signatures=files, bogus=1)
    # The fold count is an option apart from run_benchmark's `folds` (which picks folds).
    board = run_benchmark(
        "signature-transfer", folds=["B/fold1"], n_folds=3, signatures=files,
        holdout_context="B", out=tmp_path / "run", isolate=False, progress=False, report=False,
    )  # fmt: skip
    assert set(board.results["fold"]) == {"B/fold1"}


# --- registered suites on real data ----------------------------------------------------------------


def test_registered_suites_declare_their_primary_metric() -> None:
    assert get_suite("replogle2022-k562-to-rpe1").primary_metric == "top100_up"
    for name in ("neurips2023-heldout-celltype", "sciplex3-heldout-line"):
        assert get_suite(name).primary_metric == "spearman"
    for name in SUITES:
        suite = get_suite(name)
        assert suite.kind == "signatures" and list(suite.models) == MODELS


@pytest.mark.shared
@pytest.mark.parametrize("name", REAL)
def test_real_suite_runs_on_a_subset(name: str, tmp_path, monkeypatch) -> None:
    if not (shared_dir() / "data" / "signatures").is_dir():
        pytest.skip(f"shared signatures not found under {shared_dir()} (set CELLTWIN_SHARED)")
    monkeypatch.setenv("CELLTWIN_CACHE", str(tmp_path))
    suite = get_suite(name)
    small = {"max_perturbations": 10}
    folds = suite.folds(**small)
    res = suite.run_fold(folds[0], **small)
    assert list(res.columns) == list(RESULT_COLUMNS)
    assert set(res["model"]) == {*MODELS, REFERENCE}
    primary = res[res["metric"] == suite.primary_metric]
    assert primary["value"].notna().all()
    # Models that see the target context beat chance on the primary metric.
    means = primary.groupby("model")["value"].mean()
    assert means["low_rank"] > 0.0 and means["context_transfer_linear"] > 0.0
    assert set(res["context"]) == set(SUITES[name].splits(**small)[0].holdout)


def test_model_seed_is_passed_only_to_models_that_take_one() -> None:
    sigs = make_signatures(n_perts=12, n_genes=30)
    split = transfer_splits(sigs, holdout=["A"], folds=3)[0]
    a = fold_predictions(sigs, split, models=["low_rank"], seed=0)["low_rank"]
    b = fold_predictions(sigs, split, models=["low_rank"], seed=0)["low_rank"]
    np.testing.assert_array_equal(a.X, b.X)
    assert a.uns["celltwin"]["prediction"]["params"]["seed"] == 0
    assert get_model("mean_other_contexts").get_params() == {}
