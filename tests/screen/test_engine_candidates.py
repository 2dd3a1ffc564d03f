"""Candidates and their builders: genes, pairs, drugs, measured profiles, CMap, representable."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._settings import shared_dir
from celltwin.screen import (
    Candidates,
    cmap,
    concat,
    drugs,
    genes,
    measured,
    pairs,
    pairs_of_top,
    representable,
    screen,
)


def test_genes_and_pairs() -> None:
    table = genes(["STAT1", "JAK2"]).table
    assert table[["label", "perturbation", "dose", "kind"]].values.tolist() == [
        ["STAT1", "STAT1", "", "predicted"],
        ["JAK2", "JAK2", "", "predicted"],
    ]
    got = pairs(["C", "A", "B", "D"]).table["perturbation"].tolist()
    assert len(got) == 6 and len(set(got)) == 6
    assert all(p.split("+") == sorted(p.split("+")) for p in got)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        ("STAT1", "not one string"),
        ([], "at least one"),
        (["A", "A"], "more than once"),
        (["control"], "no perturbation"),
    ],
)
def test_bad_gene_lists_are_refused_with_the_fix(names, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        genes(names)


def test_drugs_cross_a_library_with_a_dose_grid(tmp_path) -> None:
    lib = tmp_path / "lib.csv"
    lib.write_text("aspirin,CC(=O)OC1=CC=CC=C1C(=O)O\ncaffeine,CN1C=NC2=C1C(=O)N(C(=O)N2C)C\n")
    table = drugs(lib, [0.1, 10]).table
    assert table["label"].tolist() == ["aspirin:0.1", "aspirin:10", "caffeine:0.1", "caffeine:10"]
    assert table["dose"].tolist() == ["0.1", "10", "0.1", "10"]
    assert table["smiles"].str.len().gt(5).all()
    header = tmp_path / "header.csv"
    header.write_text("name,smiles\naspirin,CC(=O)OC1=CC=CC=C1C(=O)O\n")
    assert drugs(header, [1]).table["label"].tolist() == ["aspirin:1"]
    with pytest.raises(ValueError, match="each > 0"):
        drugs(lib, [0])
    with pytest.raises(FileNotFoundError, match="--drugs FILE"):
        drugs(tmp_path / "none.csv", [1])


def test_measured_profiles_from_anndata_csv_and_signature_files(tmp_path) -> None:
    adata = AnnData(
        X=np.array([[1.0, -1.0, 0.0]], dtype=np.float32),
        obs=pd.DataFrame({"perturbation": ["KO1"]}, index=["row1"]),
        var=pd.DataFrame(index=["a", "b", "c"]),
    )
    got = measured(adata, prefix="m:")
    assert got.table[["label", "perturbation", "kind"]].values.tolist() == [
        ["m:row1", "KO1", "measured"]
    ]
    assert list(got.profiles.obs_names) == ["m:row1"]
    csv = tmp_path / "scores.csv"
    pd.DataFrame([[0.5, -0.5]], index=["p1"], columns=["a", "b"]).to_csv(csv)
    np.testing.assert_allclose(measured(csv).profiles.X, [[0.5, -0.5]])
    sig = tmp_path / "K562.json.gz"
    with gzip.open(sig, "wt") as fh:
        json.dump({"P": {"up_full": ["a", "b", "c"], "up": ["a"]}}, fh)
    prof = measured(sig).profiles
    np.testing.assert_allclose(prof[:, ["a", "b", "c"]].X, [[1.0, 0.0, -1.0]])
    with pytest.raises(ValueError, match="unknown format"):
        bad = tmp_path / "x.txt"
        bad.write_text("?")
        measured(bad)


def test_concat_keeps_labels_unique_and_joins_profiles_on_the_union_of_genes() -> None:
    one = measured(AnnData(np.ones((1, 2), np.float32), var=pd.DataFrame(index=["a", "b"])))
    two = measured(
        AnnData(np.ones((1, 2), np.float32), var=pd.DataFrame(index=["b", "c"])), prefix="2:"
    )
    both = concat(genes(["X"]), one, two)
    assert len(both) == 3 and list(both.profiles.var_names) == ["a", "b", "c"]
    assert np.isnan(both.profiles.X[0, 2]) and np.isnan(both.profiles.X[1, 0])
    with pytest.raises(ValueError, match="prefix"):
        concat(one, one)


def test_a_measured_row_without_its_profile_is_refused() -> None:
    table = pd.DataFrame(
        {"label": ["m"], "perturbation": ["m"], "dose": [""], "kind": ["measured"]}
    )
    with pytest.raises(ValueError, match="profiles"):
        Candidates(table)


@pytest.mark.skipif(
    not (shared_dir() / "data/lincs").is_dir(), reason="../shared/data/lincs is absent"
)
def test_cmap_ranks_become_centred_scores() -> None:
    got = cmap()
    assert len(got) == 56 and got.table["label"].str.startswith("cmap:").all()
    x = np.asarray(got.profiles.X, dtype=float)
    assert np.nanmax(x) <= 1.0 and np.nanmin(x) >= -1.0
    ranks = pd.read_csv(shared_dir() / "data/lincs/DrugVsDisease_cmap56_rank_profiles.csv.gz",
                        index_col=0, usecols=[0, 1])  # fmt: skip
    first = ranks.iloc[:, 0]
    top_gene = first.idxmin()  # rank 1: the most up-regulated gene scores +1
    np.testing.assert_allclose(got.profiles[0, top_gene].X[0, 0], 1.0, atol=1e-6)


def test_representable_and_pairs_of_top(linear, data, cosine) -> None:
    cands = representable(linear)
    assert set(cands.table["perturbation"]) == {"TF02", "TF03", "TF03+TF06", "TF04", "TF06"}
    effect = np.ones(len(linear.genes_))
    result = screen(linear, data.adata, candidates=genes(["TF02", "TF03", "TF04", "TF06"]),
                    objective=cosine(effect, linear.genes_), context="A", progress=False)  # fmt: skip
    best = result.table["perturbation"].head(3).tolist()
    got = pairs_of_top(result, 3).table["perturbation"].tolist()
    assert sorted(got) == sorted("+".join(sorted(p)) for p in
                                 [(best[0], best[1]), (best[0], best[2]), (best[1], best[2])])  # fmt: skip
    with pytest.raises(ValueError, match="n' must be an integer >= 2"):
        pairs_of_top(result, 1)


def test_a_pseudobulk_table_gives_its_effects_without_controls(data) -> None:
    from celltwin.pp import pseudobulk

    pb = pseudobulk(data.adata, by=["context", "perturbation", "dose"])
    got = measured(pb)
    assert "control" not in set(got.table["perturbation"])
    first = got.table["label"].iloc[0]
    row = np.flatnonzero(pb.obs_names == first)[0]
    np.testing.assert_allclose(
        got.profiles[first].X[0], np.asarray(pb.layers["delta"])[row], rtol=1e-6
    )
