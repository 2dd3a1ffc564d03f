"""Each convention read from a file into canonical form, and written back (round trips)."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltwin import io
from celltwin._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    DOSE,
    GENE_ID,
    PERTURBATION,
    PERTURBATION_TYPE,
    TIME,
    UNS_KEY,
    split_label,
)

KEYS = [PERTURBATION, PERTURBATION_TYPE, CONTEXT, BATCH]


def _same(read: ad.AnnData, truth: pd.DataFrame, keys: list[str]) -> None:
    for key in keys:
        got = read.obs[key].astype(str).to_numpy()
        want = truth.loc[read.obs_names, key].astype(str).to_numpy()
        assert (got == want).all(), f"{key}: {got[got != want][:5]} != {want[got != want][:5]}"


@pytest.mark.parametrize(
    ("layout", "perturbation_key", "type_expected"),
    [
        ("vcc", "target_gene", "other"),
        ("gears", "condition", "other"),
        ("scperturb", "perturbation", "crispri"),
        ("celltwin", "perturbation", "crispri"),
    ],
)
def test_each_convention_reads_to_the_same_canonical_data(
    layout, perturbation_key, type_expected, genetic, make_source, write_h5ad, caplog, genes
) -> None:
    source = make_source(layout, genetic)
    path = write_h5ad(source, f"{layout}.h5ad")
    assert io.detect_convention(source) == layout
    with caplog.at_level(logging.INFO, logger="celltwin"):
        adata = io.read(path)
    assert f"read as convention {layout!r}" in caplog.text
    truth = genetic.copy()
    truth.loc[truth[PERTURBATION] != CONTROL, PERTURBATION_TYPE] = type_expected
    _same(adata, truth, KEYS)
    record = adata.uns[UNS_KEY]["convention"]
    assert record["name"] == layout
    assert record["perturbation_key"] == perturbation_key
    # Original columns are kept alongside the canonical ones.
    for column in source.obs.columns:
        assert column in adata.obs.columns
    assert list(adata.var_names) == genes
    # Counts went to the counts layer, X is log1p(CP10k) of them.
    assert np.array_equal(adata.layers[COUNTS_LAYER].toarray(), source.X.toarray())
    counts = source.X.toarray().astype(np.float64)
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    assert np.allclose(adata.X.toarray(), expected, atol=1e-5)
    io.validate(adata)


def test_gears_drops_ctrl_parts_and_maps_ensembl_to_symbols(
    genetic, make_source, genes, ensembl
) -> None:
    source = make_source("gears", genetic)
    assert source.obs["condition"].isin(["AAA+ctrl", "ctrl+BBB", "BBB+AAA", "ctrl"]).any()
    adata = io.to_canonical(source)
    pairs = set(zip(source.obs["condition"], adata.obs[PERTURBATION], strict=True))
    assert pairs == {
        ("ctrl", CONTROL),
        ("AAA+ctrl", "AAA"),
        ("ctrl+BBB", "BBB"),
        ("BBB+AAA", "AAA+BBB"),
        ("CCC+ctrl", "CCC"),
    }
    assert list(adata.var_names) == genes
    assert list(adata.var[GENE_ID]) == ensembl
    assert adata.uns[UNS_KEY]["genes"]["gene_symbol_key"] == "gene_name"
    # The input is not modified.
    assert PERTURBATION not in source.obs.columns
    assert list(source.var_names) == ensembl


def test_scperturb_doses_units_and_time_align_with_sorted_components(tmp_path, make_adata) -> None:
    obs = pd.DataFrame(
        {
            "perturbation": ["control", "drugB", "drugB+drugA", "drugA", "(+)-JQ1"],
            "dose_value": ["0", "250", "100+10", "1000", "50"],
            "dose_unit": ["nM"] * 5,
            "perturbation_type": ["control", "drug", "drug", "drug", "drug"],
            "cell_line": ["A549"] * 5,
            "time": ["24h", "24h", "1d", "24", "30min"],
        },
        index=[f"c{i}" for i in range(5)],
    )
    source = make_adata(obs)
    source.write_h5ad(tmp_path / "drugs.h5ad")
    adata = io.read(tmp_path / "drugs.h5ad")
    assert adata.uns[UNS_KEY]["convention"]["name"] == "scperturb"
    assert list(adata.obs[PERTURBATION]) == [CONTROL, "drugB", "drugA+drugB", "drugA", "(+)-JQ1"]
    # "drugB+drugA" at "100+10" nM becomes "drugA+drugB" at "0.01+0.1" µM.
    assert list(adata.obs[DOSE]) == ["", "0.25", "0.01+0.1", "1", "0.05"]
    assert list(adata.obs[TIME]) == [24.0, 24.0, 24.0, 24.0, 0.5]
    assert list(adata.obs[PERTURBATION_TYPE]) == ["control"] + ["drug"] * 4
    assert list(adata.obs[CONTEXT]) == ["A549"] * 5
    # The source perturbation column changed (sorted combination): its original is kept.
    assert list(adata.obs["perturbation_original"]) == list(obs["perturbation"])
    for label, dose in zip(adata.obs[PERTURBATION], adata.obs[DOSE], strict=True):
        n = 0 if label == CONTROL else len(split_label(label))
        assert len(io.parse_dose(dose, n_components=n)) == n


def test_scgen_style_condition_with_unstimulated_label(write_h5ad, make_adata) -> None:
    obs = pd.DataFrame(
        {
            "condition": ["unstimulated"] * 4 + ["IFNB"] * 4 + ["IFNB+TNF"] * 4,
            "cell_type": ["B", "T"] * 6,
        },
        index=[f"c{i}" for i in range(12)],
    )
    adata = io.read(write_h5ad(make_adata(obs), "s.h5ad"))
    assert adata.uns[UNS_KEY]["convention"]["name"] == "scgen"
    assert adata.uns[UNS_KEY]["convention"]["control_label"] == "unstimulated"
    assert list(adata.obs[PERTURBATION].unique()) == [CONTROL, "IFNB", "IFNB+TNF"]
    assert set(adata.obs[PERTURBATION_TYPE]) == {"control", "other"}


def test_columns_convention_with_user_columns(write_h5ad, make_adata) -> None:
    obs = pd.DataFrame(
        {
            "my_guide_target": ["NTC", "KLF1", "GATA1+KLF1", "NTC"],
            "line": ["K562"] * 4,
            "lane_id": ["L1", "L2", "L1", "L2"],
            "conc_nM": ["", "", "", ""],
        },
        index=list("abcd"),
    )
    path = write_h5ad(make_adata(obs), "c.h5ad")
    adata = io.read(
        path,
        perturbation_key="my_guide_target",
        control_label="NTC",
        context_key="line",
        batch_key="lane_id",
        perturbation_type="crispra",
    )
    record = adata.uns[UNS_KEY]["convention"]
    assert record["name"] == "columns"
    assert record["perturbation_type"] == "crispra"
    assert list(adata.obs[PERTURBATION]) == [CONTROL, "KLF1", "GATA1+KLF1", CONTROL]
    assert list(adata.obs[PERTURBATION_TYPE]) == ["control", "crispra", "crispra", "control"]
    assert list(adata.obs[BATCH]) == ["L1", "L2", "L1", "L2"]
    # A dose column named with its unit: nanomolar, converted to µM.
    obs2 = obs.assign(conc_nM=["", "10", "10+500", ""])
    adata2 = io.to_canonical(
        make_adata(obs2),
        perturbation_key="my_guide_target",
        control_label="NTC",
        dose_key="conc_nM",
        context="K562",
    )
    assert list(adata2.obs[DOSE]) == ["", "0.01", "0.01+0.5", ""]
    assert adata2.uns[UNS_KEY]["convention"]["dose_unit"] == "nM"
    # A time column named with its unit: minutes, converted to hours.
    adata3 = io.to_canonical(
        make_adata(obs.assign(time_min=["0", "30", "90", "0"])),
        perturbation_key="my_guide_target",
        control_label="NTC",
        time_key="time_min",
    )
    assert list(adata3.obs[TIME]) == [0.0, 0.5, 1.5, 0.0]


def test_vcc_like_suffixed_column_is_detected(write_h5ad, make_adata) -> None:
    obs = pd.DataFrame(
        {"target_gene_max": ["non-targeting", "STAT1", "IRF1"] * 4, "bio_rep": ["r1", "r2"] * 6},
        index=[f"c{i}" for i in range(12)],
    )
    adata = io.read(write_h5ad(make_adata(obs), "v.h5ad"))
    record = adata.uns[UNS_KEY]["convention"]
    assert (record["name"], record["perturbation_key"], record["batch_key"]) == (
        "vcc",
        "target_gene_max",
        "bio_rep",
    )
    assert record["context"] == "unknown"
    assert set(adata.obs[CONTEXT]) == {"unknown"}


def test_unknown_layout_error_names_columns_and_the_option(write_h5ad, make_adata) -> None:
    obs = pd.DataFrame({"sgRNA": ["NT_1", "A_1", "B_2"] * 2, "qc": [1.0] * 6}, index=list("abcdef"))
    path = write_h5ad(make_adata(obs), "u.h5ad")
    with pytest.raises(io.ValidationError) as err:
        io.read(path)
    text = str(err.value)
    assert "'sgRNA'" in text and "'qc'" in text  # the columns seen
    assert "perturbation_key='sgRNA'" in text  # the exact option to pass
    assert "control_label=" in text
    assert err.value.problems[0].code == "unknown_convention"


def test_perturbation_key_picks_a_convention_that_uses_it(make_source, genetic) -> None:
    source = make_source("gears", genetic)
    adata = io.to_canonical(source, perturbation_key="condition")
    # Still GEARS (its ctrl parts dropped), not the generic columns reader.
    assert adata.uns[UNS_KEY]["convention"]["name"] == "gears"
    assert "ctrl" not in set(adata.obs[PERTURBATION])


@pytest.mark.parametrize("layout", ["vcc", "gears", "scperturb", "scgen", "celltwin"])
def test_round_trip_canonical_to_layout_and_back_is_identity(layout, canonical, tmp_path) -> None:
    path = io.write(canonical, tmp_path / f"{layout}.h5ad", convention=layout)
    assert io.detect_convention(ad.read_h5ad(path)) == layout
    back = io.read(path)
    assert back.uns[UNS_KEY]["convention"]["name"] == layout
    _same(back, canonical.obs, KEYS)
    assert np.allclose(back.X.toarray(), canonical.X.toarray())
    assert np.array_equal(
        back.layers[COUNTS_LAYER].toarray(), canonical.layers[COUNTS_LAYER].toarray()
    )
    assert list(back.var_names) == list(canonical.var_names)


@pytest.mark.parametrize("layout", ["scperturb", "scgen", "celltwin"])
def test_round_trip_keeps_doses_and_times(layout, drug, make_adata) -> None:
    raw = make_adata(drug.copy())
    canonical = io.to_canonical(raw)
    back = io.to_canonical(io.from_canonical(canonical, convention=layout))
    keys = [*KEYS, DOSE] + ([TIME] if layout != "scgen" else [])
    _same(back, drug, keys)


def test_writers_produce_each_layout(canonical) -> None:
    vcc = io.from_canonical(canonical, convention="vcc")
    assert set(vcc.obs["target_gene"]) == {"non-targeting", "AAA", "BBB", "AAA+BBB", "CCC"}
    assert list(vcc.obs["cell_type"]) == list(canonical.obs[CONTEXT])
    assert PERTURBATION not in vcc.obs.columns and CONTEXT not in vcc.obs.columns
    gears = io.from_canonical(canonical, convention="gears")
    assert set(gears.obs["condition"]) == {"ctrl", "AAA+ctrl", "BBB+ctrl", "AAA+BBB", "CCC+ctrl"}
    assert list(gears.var["gene_name"]) == list(canonical.var_names)
    scp = io.from_canonical(canonical, convention="scperturb")
    assert set(scp.obs["perturbation"]) == set(canonical.obs[PERTURBATION])
    assert list(scp.obs["celltype"]) == list(canonical.obs[CONTEXT])
    assert "convention" not in scp.uns[UNS_KEY]
    # The canonical object itself is untouched.
    assert PERTURBATION in canonical.obs.columns


def test_from_canonical_needs_canonical_data_and_a_known_layout(make_source, genetic) -> None:
    with pytest.raises(io.ValidationError, match="to_canonical"):
        io.from_canonical(make_source("vcc", genetic), convention="gears")
    with pytest.raises(io.ValidationError, match="cannot write convention 'columns'"):
        io.from_canonical(make_source("celltwin", genetic), convention="columns")
