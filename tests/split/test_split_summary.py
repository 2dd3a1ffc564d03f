"""Splits say what they did: no silent validation set, counts stored and described."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anndata as ad
import numpy as np
import pytest
from test_split import combination_data, drug_data, perturbation_data

from celltwin._keys import CONTEXT, PERTURBATION, SPLIT, TEST, TRAIN, UNS_KEY, VAL
from celltwin.io import describe, describe_split, split_counts
from celltwin.split import (
    split_combinations,
    split_contexts,
    split_drugs,
    split_info,
    split_perturbations,
)

#: Every strategy that can draw a validation set by fraction, called with test settings only.
TEST_ONLY: dict[str, tuple[Callable[[], ad.AnnData], Callable[..., None], dict[str, Any]]] = {
    "perturbations_list": (perturbation_data, split_perturbations, {"test": ["P01", "P02"]}),
    "perturbations_fraction": (perturbation_data, split_perturbations, {"test_fraction": 0.2}),
    "per_context": (perturbation_data, split_perturbations, {"per_context": True}),
    "combinations": (combination_data, split_combinations, {}),
    "drugs_list": (drug_data, split_drugs, {"test": ["D1"]}),
    "drugs_fraction": (drug_data, split_drugs, {}),
}


@pytest.mark.parametrize("name", list(TEST_ONLY))
def test_no_validation_set_unless_asked(name: str) -> None:
    builder, func, kwargs = TEST_ONLY[name]
    adata = builder()
    func(adata, **kwargs)
    labels = adata.obs[SPLIT].astype(str)
    assert (labels == TEST).any()
    assert not (labels == VAL).any()
    assert split_info(adata)["n_cells"][VAL] == 0

    asked = builder()
    func(asked, **kwargs, val_fraction=0.1)  # the old behaviour, reachable explicitly
    assert (asked.obs[SPLIT].astype(str) == VAL).any()


def _expected_counts(adata: ad.AnnData, label: str) -> tuple[int, int]:
    obs = adata.obs[adata.obs[SPLIT].astype(str) == label]
    perturbed = obs[obs[PERTURBATION].astype(str) != "control"]
    return len(obs), perturbed[PERTURBATION].nunique()


def test_counts_per_split_and_context_are_stored_json_ready_and_survive_h5ad(tmp_path) -> None:
    adata = perturbation_data(n_perturbations=10, n_contexts=2, cells=3, n_controls=5)
    split_perturbations(adata, test=["P01", "P02"], val=["P03"])
    stored = adata.uns[UNS_KEY]["splits"][SPLIT]
    json.dumps(stored)  # JSON-serialisable as stored
    for label in (TRAIN, VAL, TEST):
        assert (stored["n_cells"][label], stored["n_perturbations"][label]) == _expected_counts(
            adata, label
        )
    assert stored["n_control_cells"] == 10
    per_context = stored["per_context"]
    assert per_context["context"] == ["C0", "C1"]
    assert per_context["test_cells"] == [6, 6] and per_context["test_perturbations"] == [2, 2]
    assert per_context["val_cells"] == [3, 3] and per_context["control_cells"] == [5, 5]
    assert per_context["train_cells"] == [5 + 7 * 3] * 2
    assert per_context["train_perturbations"] == [7, 7]

    adata.write_h5ad(tmp_path / "s.h5ad")
    back = ad.read_h5ad(tmp_path / "s.h5ad")
    assert split_info(back) == split_info(adata)
    assert split_counts(back.obs, key=SPLIT) == {
        k: v for k, v in split_info(adata).items() if k in split_counts(adata.obs)
    }


def test_describe_split_reports_held_out_units_counts_and_fits_100_columns() -> None:
    adata = perturbation_data(n_perturbations=40, n_contexts=3)
    split_perturbations(adata, test_fraction=0.5, seed=2)
    summary = describe_split(adata)
    text = summary.to_text()
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "split 'split' (perturbations, seed 2)" in text
    assert "test  180 cells; 20 perturbations: P" in text  # 20 perturbations x 3 contexts x 3
    assert "val   none: no validation set (ask for one with --val NAMES or --val-fraction)" in text
    for context in ("C0", "C1", "C2"):
        assert any(line.strip().startswith(context) for line in text.splitlines())
    assert "control cells" in text
    json.dumps(summary.to_dict())


def test_describe_split_announces_a_validation_set() -> None:
    adata = perturbation_data()
    split_perturbations(adata, test=["P01"], val=["P05", "P06"])
    text = describe_split(adata).to_text()
    assert "val   18 cells; 2 perturbations: P05, P06" in text
    assert "fit learns from train only" in text
    header = next(line for line in text.splitlines() if line.strip().startswith("train"))
    assert header.split() == [TRAIN, VAL, TEST]  # the table gains val columns


def test_describe_names_contexts_and_drugs_in_their_own_terms() -> None:
    adata = perturbation_data()
    split_contexts(adata, test="C1", few_shot=2)
    assert describe_split(adata).held_out[TEST] == ["C1"]
    assert "1 context: C1" in describe_split(adata).to_text()
    drugs = drug_data()
    split_drugs(drugs, test=["D1"])
    assert describe_split(drugs).held_out[TEST] == ["D1"]
    assert describe_split(drugs).held_out_kind == "drugs"


def test_dataset_summary_includes_the_split(tmp_path) -> None:
    adata = perturbation_data()
    adata.X = np.log1p(adata.X)
    split_perturbations(adata, test=["P01"])
    summary = describe(adata)
    assert list(summary.splits) == [SPLIT]
    assert summary.splits[SPLIT].n_cells[TEST] == 9
    assert "split 'split' (perturbations, seed 0)" in summary.to_text()
    json.dumps(summary.to_dict())
    assert CONTEXT in adata.obs  # describe does not change the data
