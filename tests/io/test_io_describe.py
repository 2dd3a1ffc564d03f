"""describe(): a dataset in celltwin's terms, on generated data and on the real files in shared."""

from __future__ import annotations

import json
import logging

import anndata as ad
import numpy as np
import pytest

from celltwin import io
from celltwin._keys import BATCH, CONTEXT, CONTROL, COUNTS_LAYER, PERTURBATION, UNS_KEY


def test_describe_counts_match_the_data(canonical, genetic) -> None:
    summary = io.describe(canonical)
    assert summary.convention == "celltwin"
    assert (summary.n_cells, summary.n_genes) == canonical.shape
    assert summary.x_kind == "log_normalized" and summary.counts_layer
    assert summary.contexts == {"K562": 30, "RPE1": 30}
    assert summary.n_perturbations == 4  # AAA, BBB, AAA+BBB, CCC
    assert summary.perturbations_by_type == {"crispri": 4}
    assert summary.n_control_cells == 12
    assert summary.controls_per_context == {"K562": 6, "RPE1": 6}
    assert summary.n_conditions == 8
    assert summary.cells_per_condition == {"min": 6.0, "median": 6.0, "max": 6.0}
    assert (summary.n_combinations, summary.max_components) == (1, 2)
    assert summary.batches == genetic[BATCH].value_counts().to_dict()
    assert summary.problems == []
    # Top perturbations are the largest, with their cell counts.
    assert sum(summary.top_perturbations.values()) == int(
        (canonical.obs[PERTURBATION] != CONTROL).sum()
    )


def test_describe_doses_and_times(drug, make_adata) -> None:
    summary = io.describe(io.to_canonical(make_adata(drug.copy())))
    assert summary.doses == {"0.1": 10, "10": 10, "1": 10, "0.1+1": 10}
    assert summary.times == {"24": 50}
    assert summary.perturbations_by_type == {"drug": 3}


def test_describe_a_file_in_another_convention_without_reading_it(make_source, genetic) -> None:
    source = make_source("gears", genetic)
    summary = io.describe(source)
    assert summary.convention == "gears"
    assert summary.columns["perturbation_key"] == "condition"
    assert summary.x_kind == "counts" and not summary.counts_layer
    assert summary.n_perturbations == 4 and summary.n_control_cells == 12
    assert summary.problems == []
    assert PERTURBATION not in source.obs.columns  # describe changes nothing


def test_describe_reports_problems_instead_of_raising(make_source, genetic) -> None:
    source = make_source("vcc", genetic)
    source = source[source.obs["target_gene"] != "non-targeting"].copy()
    summary = io.describe(source)
    assert [p.code for p in summary.problems] == ["no_controls"]
    text = summary.to_text()
    assert "1 error(s)" in text and "no control cells" in text and "control_label=" in text


def test_to_text_and_to_dict(canonical) -> None:
    summary = io.describe(canonical)
    text = summary.to_text()
    for expected in (
        "convention        celltwin",
        "cells x genes     60 x 30",
        "contexts (2)      K562: 30, RPE1: 30",
        "combinations      1 (up to 2 components)",
        "problems          none",
    ):
        assert expected in text, text
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["n_cells"] == 60 and data["contexts"] == {"K562": 30, "RPE1": 30}


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.shared
def test_kang_scgen_file(shared_data, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="celltwin"):
        adata = io.read(shared_data / "kang2018_scgen_valid.h5ad")
    assert "read as convention 'scgen'" in caplog.text
    summary = io.describe(adata)
    assert summary.convention == "scgen"
    assert summary.columns["perturbation_key"] == "condition"
    assert summary.columns["context_key"] == "cell_type"
    assert summary.n_cells == 1975 and summary.n_genes == 6998
    assert set(adata.obs[PERTURBATION]) == {CONTROL, "stimulated"}  # 2 conditions
    assert summary.n_perturbations == 1 and summary.n_control_cells == 936
    assert len(summary.contexts) == 7 and summary.contexts["CD4T"] == 634
    # X was log-normalised in the file: kept, and no counts invented.
    assert summary.x_kind == "log_normalized" and not summary.counts_layer
    assert adata.uns[UNS_KEY]["normalization"]["method"] == "as_provided"
    assert summary.problems == []


@pytest.mark.shared
def test_papalexi_file(shared_data) -> None:
    path = shared_data / "papalexi2021_thp1_subset.h5ad"
    raw = ad.read_h5ad(path)
    adata = io.read(path, context="THP-1", perturbation_type="crispr_ko")
    summary = io.describe(adata)
    record = adata.uns[UNS_KEY]["convention"]
    assert (record["name"], record["perturbation_key"], record["control_label"]) == (
        "vcc",
        "target_gene_max",
        "non-targeting",
    )
    assert summary.n_cells == 20729 and summary.n_genes == 299
    # 26 labels in target_gene_max: 25 targets and 'non-targeting'.
    assert raw.obs["target_gene_max"].nunique() == 26
    assert summary.n_perturbations == 25 and summary.perturbations_by_type == {"crispr_ko": 25}
    assert summary.n_control_cells == int((raw.obs["target_gene_max"] == "non-targeting").sum())
    assert summary.batches == {"rep_1": 9428, "rep_2": 6001, "rep_3": 5300}
    assert summary.contexts == {"THP-1": 20729}
    # Raw UMI counts were kept in the counts layer, and X is log1p(CP10k) of them.
    assert summary.counts_layer and summary.x_kind == "log_normalized"
    assert (adata.layers[COUNTS_LAYER] != raw.X).nnz == 0
    totals = np.asarray(raw.X.sum(1)).ravel()
    first = raw.X[0].toarray().ravel()
    assert np.allclose(adata.X[0].toarray().ravel(), np.log1p(first / totals[0] * 1e4), atol=1e-5)
    # describe() on the raw file (not read) tells the same story.
    raw_summary = io.describe(raw)
    assert raw_summary.convention == "vcc" and raw_summary.batches == summary.batches
    assert raw_summary.n_perturbations == 25 and raw_summary.x_kind == "counts"
    assert io.check(adata) == []


@pytest.mark.shared
def test_papalexi_backed_read_leaves_x_on_disk(shared_data) -> None:
    adata = io.read(shared_data / "papalexi2021_thp1_subset.h5ad", backed=True)
    assert adata.isbacked
    assert adata.uns[UNS_KEY]["x_kind"] == "counts"
    assert set(adata.obs[CONTEXT]) == {"unknown"}
    assert io.describe(adata).problems == []
