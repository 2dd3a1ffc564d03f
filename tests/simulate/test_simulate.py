"""celltwin.simulate.simulate: canonical output, and the ground truth behaves as the model says."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celltwin._keys import (
    BATCH,
    COMBO_SEP,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    DOSE,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
    TARGET_SUM,
    UNS_KEY,
    split_combination,
)
from celltwin._settings import shared_dir
from celltwin.io import check, parse_dose, validate
from celltwin.simulate import Simulation, simulate

DOSES = (0.01, 0.1, 1.0, 10.0)
SMALL = dict(
    n_genes=120,
    n_tfs=15,
    n_perturbations=8,
    combinations=4,
    drugs=2,
    drug_combinations=1,
    doses=DOSES,
    cytokines=1,
    cells_per_condition=60,
    seed=7,
)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(**SMALL)


def _group_means(adata: ad.AnnData) -> pd.DataFrame:
    """Mean X per context|perturbation|dose, as the truth tables name their rows."""
    obs = adata.obs
    key = (
        obs[CONTEXT].astype(str) + "|" + obs[PERTURBATION].astype(str) + "|" + obs[DOSE].astype(str)
    )
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    return pd.DataFrame(x, columns=adata.var_names).groupby(key.to_numpy()).mean()


def _observed_effects(sim: Simulation) -> np.ndarray:
    means = _group_means(sim.adata)
    rows = sim.effects.obs
    control = means.loc[[f"{c}|{CONTROL}|" for c in rows[CONTEXT]]].to_numpy()
    return means.loc[sim.effects.obs_names].to_numpy() - control


def _sole_targets(sim: Simulation, tf: str) -> pd.DataFrame:
    """Non-TF genes whose only regulator is ``tf`` (their response is a function of it alone)."""
    grn = sim.grn
    n_regs = grn.groupby("target").size()
    edges = grn[(grn["source"] == tf) & grn["target"].map(n_regs).eq(1)]
    return edges[~sim.adata.var.loc[edges["target"], "is_tf"].to_numpy()]


def test_canonical_anndata(sim: Simulation) -> None:
    a = sim.adata
    validate(a, require_counts=True)  # the project's own definition of canonical data
    assert check(a, require_counts=True) == []  # not even warnings
    for key in (PERTURBATION, PERTURBATION_TYPE, CONTEXT, BATCH, DOSE):
        assert key in a.obs
    assert set(a.obs[PERTURBATION_TYPE].astype(str)) <= set(PERTURBATION_TYPES)
    assert a.var_names.is_unique and a.obs_names.is_unique
    assert "gene_id" in a.var
    labels = a.obs[PERTURBATION].astype(str)
    # Canonical labels: components sorted and joined; control cells have no dose.
    for label in labels.unique():
        parts = split_combination(label)
        assert COMBO_SEP.join(sorted(parts)) == (label if parts else "")
    assert (a.obs.loc[labels == CONTROL, DOSE].astype(str) == "").all()
    drug = a.obs[PERTURBATION_TYPE].astype(str) == "drug"
    for label, dose in a.obs.loc[drug, [PERTURBATION, DOSE]].astype(str).drop_duplicates().values:
        values = parse_dose(dose, n_components=len(split_combination(label)))
        assert all(v in DOSES for v in values)
    genetic = a.obs[PERTURBATION_TYPE].astype(str) == "crispr_ko"
    assert (a.obs.loc[genetic, DOSE].astype(str) == "").all()
    # Cell counts: cells_per_condition per perturbed condition, twice that for control.
    n = a.obs.groupby([CONTEXT, PERTURBATION, DOSE], observed=True).size()
    assert (n.xs(CONTROL, level=PERTURBATION) == 2 * SMALL["cells_per_condition"]).all()
    assert (n.drop(CONTROL, level=PERTURBATION) == SMALL["cells_per_condition"]).all()
    record = a.uns[UNS_KEY]["simulation"]
    assert record["seed"] == SMALL["seed"] and record["n_genes"] == SMALL["n_genes"]
    assert a.uns[UNS_KEY]["normalization"]["target_sum"] == TARGET_SUM


def test_counts_and_normalisation(sim: Simulation) -> None:
    counts = sim.adata.layers[COUNTS_LAYER]
    assert sp.issparse(counts) and counts.dtype.kind == "i" and counts.data.min() >= 0
    lib = np.asarray(counts.sum(axis=1)).ravel()
    # Log-normal library sizes around the default median of 2,000 counts (log s.d. 0.4).
    assert 1_700 < np.median(lib) < 2_300
    assert np.percentile(lib, 1) > 2_000 / 5 and np.percentile(lib, 99) < 2_000 * 5
    assert 0.8 < np.std(np.log(lib)) / 0.4 < 1.6
    expected = np.log1p(counts.toarray() / lib[:, None] * TARGET_SUM)
    np.testing.assert_allclose(sim.adata.X.toarray(), expected, rtol=1e-5, atol=1e-5)
    # Over-dispersion: gene-wise NB plus cell states, so variance exceeds the Poisson mean.
    ctrl = (sim.adata.obs[PERTURBATION] == CONTROL) & (sim.adata.obs[CONTEXT] == "A")
    c = counts[ctrl.to_numpy()].toarray()
    high = c.mean(axis=0) > 5
    assert (c.var(axis=0)[high] > 1.5 * c.mean(axis=0)[high]).mean() > 0.9


def test_seed_determines_everything(sim: Simulation) -> None:
    again = simulate(**SMALL)
    assert (again.adata.layers[COUNTS_LAYER] != sim.adata.layers[COUNTS_LAYER]).nnz == 0
    pd.testing.assert_frame_equal(again.adata.obs, sim.adata.obs)
    np.testing.assert_array_equal(again.effects.X, sim.effects.X)
    pd.testing.assert_frame_equal(again.grn, sim.grn)
    other = simulate(**{**SMALL, "seed": 8})
    assert not np.array_equal(other.effects.X, sim.effects.X)


def test_model_does_not_depend_on_cell_numbers(sim: Simulation) -> None:
    few = simulate(**{**SMALL, "cells_per_condition": 2, "n_control_cells": 3})
    np.testing.assert_array_equal(few.effects.X, sim.effects.X)
    np.testing.assert_array_equal(few.interactions.X, sim.interactions.X)


def test_observed_effects_match_truth(sim: Simulation) -> None:
    observed, true = _observed_effects(sim), sim.effects.X
    # Most entries are ~0 and show only sampling noise (60 cells); compare the responsive ones.
    moved = np.abs(true) > 0.1
    assert np.corrcoef(observed[moved], true[moved])[0, 1] > 0.85
    big = np.abs(true) > 0.3
    assert (np.sign(observed[big]) == np.sign(true[big])).mean() > 0.97
    # The truth is of the population mean: no systematic shrinkage or inflation.
    slope = np.polyfit(true[big], observed[big], 1)[0]
    assert 0.85 < slope < 1.15


def test_knockout_target_drops(sim: Simulation) -> None:
    table = sim.perturbations
    kos = table.index[table[PERTURBATION_TYPE] == "crispr_ko"]
    means = _group_means(sim.adata)
    for ko in kos:
        for ctx in ("A", "B"):
            row = f"{ctx}|{ko}|"
            lfc = sim.effects[row, ko].layers["log_fold_change"].item()
            # Residual expression 5-20 %, plus whatever the network adds (e.g. loss of feedback).
            assert lfc < np.log(0.2) + 0.5, (row, lfc)
            control = means.loc[f"{ctx}|{CONTROL}|", ko]
            assert control > 0 and means.loc[row, ko] < 0.6 * control, (row, control)


def test_effects_propagate_with_the_right_sign(sim: Simulation) -> None:
    observed = pd.DataFrame(_observed_effects(sim), index=sim.effects.obs_names,
                            columns=sim.effects.var_names)  # fmt: skip
    checked = 0
    table = sim.perturbations
    for ko in table.index[(table[PERTURBATION_TYPE] == "crispr_ko")]:
        for _, edge in _sole_targets(sim, ko).iterrows():
            for ctx in ("A", "B"):
                row = f"{ctx}|{ko}|"
                lfc = sim.effects[row, edge["target"]].layers["log_fold_change"].item()
                # Losing an activator lowers its target, losing a repressor raises it.
                assert np.sign(lfc) == -edge["sign"], (row, edge.to_dict(), lfc)
                if abs(sim.effects[row, edge["target"]].X.item()) > 0.3:
                    assert np.sign(observed.loc[row, edge["target"]]) == -edge["sign"]
                    checked += 1
    assert checked >= 3


def test_combinations_interact(sim: Simulation) -> None:
    inter, eff = sim.interactions, sim.effects
    assert inter.n_obs == 2 * (SMALL["combinations"] + SMALL["drug_combinations"] * len(DOSES))
    for name in inter.obs_names:
        ctx, label, dose = name.split("|")
        parts = split_combination(label)
        doses = dose.split(COMBO_SEP) if dose else [""] * len(parts)
        singles = [f"{ctx}|{p}|{d}" for p, d in zip(parts, doses, strict=True)]
        additive = eff[singles].X.sum(axis=0)
        np.testing.assert_allclose(inter[name].X.ravel(), eff[name].X.ravel() - additive)
    genetic = inter.obs[PERTURBATION_TYPE] == "crispr_ko"
    # Pairs are chosen to share downstream genes, so the network makes them non-additive.
    strength = np.abs(inter.X[genetic.to_numpy()]).max(axis=1)
    assert (strength > 0.05).mean() >= 0.5 and strength.max() > 0.2
    # In log-fold-change space too, not just through the normalisation.
    assert np.abs(inter.layers["log_fold_change"][genetic.to_numpy()]).max() > 0.2


def test_dose_response_is_monotone(sim: Simulation) -> None:
    table = sim.perturbations
    checked = 0
    for drug in table.index[table[PERTURBATION_TYPE] == "drug"]:
        for tf in table.loc[drug, "targets"].split(COMBO_SEP):
            for target in _sole_targets(sim, tf)["target"]:
                for ctx in ("A", "B"):
                    rows = [f"{ctx}|{drug}|{d:g}" for d in DOSES]
                    lfc = sim.effects[rows, target].layers["log_fold_change"].ravel()
                    assert np.all(np.diff(np.abs(lfc)) >= -1e-12), (drug, target, lfc)
                    assert len({np.sign(v) for v in lfc if abs(v) > 1e-9}) <= 1
                    checked += 1
        for ctx in ("A", "B"):
            rows = [f"{ctx}|{drug}|{d:g}" for d in DOSES]
            total = np.abs(sim.effects[rows].layers["log_fold_change"]).sum(axis=1)
            assert np.all(np.diff(total) >= -1e-12) and total[-1] > total[0]
    assert checked > 0


def test_contexts_respond_differently(sim: Simulation) -> None:
    eff = sim.effects
    ctrl_a = eff[eff.obs_names[0]].layers["expected"] - eff[eff.obs_names[0]].X
    b_first = eff.obs_names[eff.obs[CONTEXT] == "B"][0]
    ctrl_b = eff[b_first].layers["expected"] - eff[b_first].X
    assert np.abs(ctrl_a - ctrl_b).max() > 0.5  # baselines differ
    diffs = []
    for label in sim.perturbations.index:
        dose = "1" if sim.perturbations.loc[label, PERTURBATION_TYPE] == "drug" else ""
        a, b = eff[f"A|{label}|{dose}"].X.ravel(), eff[f"B|{label}|{dose}"].X.ravel()
        diffs.append(np.abs(a - b).max())
    # Responses to the same perturbation differ between contexts, by more than a little.
    assert np.median(diffs) > 0.1


def test_other_perturbation_types() -> None:
    s = simulate(
        n_genes=80, n_tfs=10, n_perturbations=6, perturbation_types=("crispri", "crispra"),
        combinations=2, cytokines=2, cells_per_condition=5, seed=3,
    )  # fmt: skip
    table = s.perturbations
    for name, kind in table[PERTURBATION_TYPE].items():
        if kind in ("crispri", "crispra"):
            lfc = s.effects[f"A|{name}|", name].layers["log_fold_change"].item()
            if kind == "crispri":
                assert np.log(0.1) - 0.5 < lfc < np.log(0.3) + 0.5
            else:
                assert lfc > np.log(3.0) - 0.5
    assert set(s.interactions.obs[PERTURBATION_TYPE]) <= {"crispri", "crispra"}
    for name in table.index[table[PERTURBATION_TYPE] == "cytokine"]:
        # A cytokine raises its TFs' activity: sole targets follow the sign of the edge.
        for tf in table.loc[name, "targets"].split(COMBO_SEP):
            for _, edge in _sole_targets(s, tf).iterrows():
                lfc = s.effects[f"A|{name}|", edge["target"]].layers["log_fold_change"].item()
                assert np.sign(lfc) == edge["sign"]


def test_batches_shift_expression() -> None:
    s = simulate(n_genes=60, n_tfs=6, n_perturbations=2, combinations=0,
                 cells_per_condition=10, n_control_cells=1500, n_batches=2, seed=2)  # fmt: skip
    a = s.adata
    ctrl = a[(a.obs[PERTURBATION] == CONTROL).to_numpy() & (a.obs[CONTEXT] == "A").to_numpy()]
    assert set(ctrl.obs[BATCH].astype(str)) == {"batch1", "batch2"}
    means = _group_means(ctrl.copy()).to_numpy()  # one group: the control of A
    assert means.shape[0] == 1
    x = ctrl.X.toarray()
    b = (ctrl.obs[BATCH] == "batch1").to_numpy()
    between = np.abs(x[b].mean(0) - x[~b].mean(0))
    # A random split of the same cells shows only sampling noise.
    rng = np.random.default_rng(0)
    half = rng.permutation(b)
    within = np.abs(x[half].mean(0) - x[~half].mean(0))
    assert np.median(between) > 2 * np.median(within)


def test_writes_to_h5ad(sim: Simulation, tmp_path) -> None:
    path = tmp_path / "sim.h5ad"
    sim.adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert back.uns[UNS_KEY]["simulation"]["seed"] == SMALL["seed"]
    sim.effects.write_h5ad(tmp_path / "effects.h5ad")


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"grn": "bogus"}, "'grn'"),
        ({"n_tfs": 200}, "'n_tfs'"),
        ({"combinations": 100}, "'combinations'"),
        ({"perturbation_types": ("knockout",)}, "'perturbation_types'"),
        ({"doses": (0.0, 1.0)}, "'doses'"),
        ({"cells_per_condition": 0}, "'cells_per_condition'"),
        ({"drugs": 1, "drug_combinations": 1}, "'drug_combinations'"),
    ],
)
def test_validation_names_the_key(changes: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        simulate(**{**SMALL, **changes})


@pytest.mark.shared
def test_dorothea_network() -> None:
    path = shared_dir() / "priors" / "dorothea_human.tsv.gz"
    if not path.is_file():
        pytest.skip(f"DoRothEA not found at {path}: set CELLTWIN_SHARED to the shared folder")
    s = simulate(grn="dorothea", n_genes=150, n_tfs=15, n_perturbations=6, combinations=2,
                 cells_per_condition=5, seed=0)  # fmt: skip
    table = pd.read_csv(path, sep="\t")
    table = table[table["confidence"].isin(["A", "B"])]
    assert s.adata.n_vars == 150 and s.adata.var["is_tf"].sum() == 15
    tfs = set(s.adata.var_names[s.adata.var["is_tf"]])
    assert tfs <= set(table["tf"])
    assert set(s.adata.var_names) <= set(table["tf"]) | set(table["target"])
    merged = s.grn.merge(table, left_on=["source", "target"], right_on=["tf", "target"])
    assert len(merged) == len(s.grn)  # every edge is a DoRothEA A-B edge, with its sign
    assert (merged["sign"] == np.sign(merged["mor"])).all()
    assert set(s.grn["source"]) <= tfs
    # Every A-B edge among the chosen genes is kept.
    genes = set(s.adata.var_names)
    inside = table[
        table["tf"].isin(tfs) & table["target"].isin(genes) & (table["tf"] != table["target"])
    ]
    assert len(inside) == len(s.grn)


def test_every_simulated_type_is_canonical() -> None:
    from celltwin.simulate._design import APPLY

    assert set(APPLY) <= set(PERTURBATION_TYPES)
