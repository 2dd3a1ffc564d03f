"""Ranked signatures: the container, score transforms, reading and writing the JSON layout."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pytest

from celltwin._settings import shared_dir
from celltwin.io import (
    RankSignatures,
    concat_signatures,
    read_signatures,
    write_signatures,
)

SIG_DIR = shared_dir() / "data" / "signatures"
needs_shared = pytest.mark.skipif(
    not SIG_DIR.is_dir(), reason=f"shared signatures not found at {SIG_DIR} (set CELLTWIN_SHARED)"
)

FULL = {
    "drugA": {"up_full": ["g1", "g2", "g3", "g4", "g5"], "up": ["g1"]},
    "drugB": {"up_full": ["g5", "g4", "g3", "g2", "g1"], "up": ["g5", "g4"]},
}
TOP = {
    "KO1": {"up_full": ["a", "b", "c", "d"], "up": ["a", "z"]},
    "KO2": {"up_full": ["e", "a", "f", "g"], "up": ["e"]},
}


def _write(path: Path, mapping: dict) -> Path:
    with gzip.open(path, "wt") as fh:
        json.dump(mapping, fh)
    return path


def test_linear_rank_full_is_centred_in_minus_one_one() -> None:
    sigs = RankSignatures.from_mapping(FULL, context="c", ranking="full")
    scores = sigs.to_scores(genes=["g1", "g2", "g3", "g4", "g5", "other"])
    x = scores.X
    np.testing.assert_allclose(x[0], [1.0, 0.5, 0.0, -0.5, -1.0, 0.0])
    np.testing.assert_allclose(x[1], [-1.0, -0.5, 0.0, 0.5, 1.0, 0.0])
    assert list(scores.obs["perturbation"]) == ["drugA", "drugB"]
    assert list(scores.obs["context"]) == ["c", "c"]
    assert scores.uns["celltwin"]["signature_scores"]["transform"] == "linear_rank"


def test_linear_rank_top_k_scores_listed_genes_and_zero_elsewhere() -> None:
    sigs = RankSignatures.from_mapping(TOP, context="K562", ranking="top")
    s = sigs.to_scores()
    # Default genes: union of up_full and up, sorted (z is only in 'up').
    assert list(s.var_names) == ["a", "b", "c", "d", "e", "f", "g", "z"]
    k = 4
    expected_ko1 = {"a": 4 / k, "b": 3 / k, "c": 2 / k, "d": 1 / k}
    for j, g in enumerate(s.var_names):
        assert s.X[0, j] == pytest.approx(expected_ko1.get(g, 0.0))
    assert s.X[1, list(s.var_names).index("a")] == pytest.approx(3 / k)
    assert s.X.min() == 0.0 and s.X.max() == 1.0


def test_significant_up_marks_up_genes_even_outside_up_full() -> None:
    sigs = RankSignatures.from_mapping(TOP, context="K562", ranking="top")
    s = sigs.to_scores(transform="significant_up")
    ko1 = dict(zip(s.var_names, s.X[0], strict=True))
    assert ko1["a"] == 1.0 and ko1["z"] == 1.0 and ko1["b"] == 0.0
    with pytest.raises(ValueError, match="unknown transform 'rank'"):
        sigs.to_scores(transform="rank")


def test_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"'drugA'.*'up_full' and 'up'"):
        RankSignatures.from_mapping({"drugA": {"up": []}}, context="c", ranking="full")
    with pytest.raises(ValueError, match="strings"):
        RankSignatures.from_mapping(
            {"d": {"up_full": [1, 2], "up": []}}, context="c", ranking="full"
        )
    a = RankSignatures.from_mapping(FULL, context="c", ranking="full")
    with pytest.raises(ValueError, match="unique"):
        concat_signatures([a, a])


def test_read_infers_context_and_ranking(tmp_path: Path) -> None:
    full = read_signatures(_write(tmp_path / "pbmc_b.json.gz", FULL))
    top = read_signatures(_write(tmp_path / "k562_top4.json.gz", TOP))
    assert full.contexts == ["pbmc_b"] and set(full.table["ranking"]) == {"full"}
    assert top.contexts == ["k562_top4"] and set(top.table["ranking"]) == {"top"}
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(FULL))
    assert read_signatures(plain, context="X", ranking="top").table["ranking"].tolist() == [
        "top",
        "top",
    ]
    with pytest.raises(FileNotFoundError):
        read_signatures(tmp_path / "nope.json.gz")


def test_write_read_round_trip_file_and_folder(tmp_path: Path) -> None:
    a = RankSignatures.from_mapping(FULL, context="A549", ranking="full")
    b = RankSignatures.from_mapping(TOP, context="K562", ranking="top")
    path = write_signatures(a, tmp_path / "a549.json.gz")
    with gzip.open(path, "rt") as fh:
        assert json.load(fh) == FULL  # the shared JSON layout, exactly
    both = concat_signatures([a, b])
    with pytest.raises(ValueError, match="2 contexts"):
        write_signatures(both, tmp_path / "both.json.gz")
    folder = write_signatures(both, tmp_path / "both")
    assert sorted(p.name for p in folder.iterdir()) == ["A549.json.gz", "K562.json.gz"]
    back = read_signatures(folder)
    assert back.table.equals(both.table)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_subset() -> None:
    a = RankSignatures.from_mapping(FULL, context="A549", ranking="full")
    b = RankSignatures.from_mapping(FULL, context="MCF7", ranking="full")
    s = concat_signatures([a, b]).subset(contexts=["MCF7"], perturbations=["drugB"])
    assert len(s) == 1 and s.table.iloc[0][["context", "perturbation"]].tolist() == [
        "MCF7",
        "drugB",
    ]


@needs_shared
def test_real_files_read_fast_with_the_documented_structure() -> None:
    t0 = time.perf_counter()
    k562 = read_signatures(SIG_DIR / "replogle2022_k562_top1000up.json.gz", context="K562")
    nk = read_signatures(SIG_DIR / "neurips2023_pbmc_nk.json.gz")
    elapsed = time.perf_counter() - t0
    assert elapsed < 10, f"reading two signature files took {elapsed:.1f} s"

    assert len(k562) == 585 and set(k562.table["ranking"]) == {"top"}
    assert {len(g) for g in k562.table["up_full"]} == {1000}
    assert nk.contexts == ["neurips2023_pbmc_nk"] and len(nk) == 135
    assert set(nk.table["ranking"]) == {"full"}

    scores = nk.to_scores()
    assert scores.shape == (135, 6349)
    # Every full ranking covers all 6,349 genes, so each row holds one of each score value.
    row = np.sort(scores.X[0])
    np.testing.assert_allclose(row, np.linspace(-1, 1, 6349), atol=1e-6)
    top = k562.to_scores()
    assert ((top.X > 0).sum(axis=1) == 1000).all()
