from __future__ import annotations

import numpy as np
import pytest

from celltwin import priors
from celltwin._settings import shared_dir

needs_shared = pytest.mark.skipif(
    not (shared_dir() / "priors").is_dir(),
    reason="prior files not found: set CELLTWIN_SHARED to the shared folder",
)


def test_read_gene_sets_parses_gmt(tmp_path) -> None:
    gmt = tmp_path / "x.gmt"
    gmt.write_text("SET_A\tdesc\tG1\tG2\tG2\nSET_B\t\tG3,1.0\tG4\n")
    sets = priors.read_gene_sets(gmt)
    assert sets == {"SET_A": ["G1", "G2"], "SET_B": ["G3", "G4"]}


def test_missing_file_names_the_fix(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="celltwin data fetch go"):
        priors.read_go(tmp_path / "nope.tsv.gz")


def test_registered_file_missing_everywhere_names_the_fetch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CELLTWIN_SHARED", str(tmp_path / "shared"))
    monkeypatch.setenv("CELLTWIN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="celltwin data fetch dorothea"):
        priors.read_dorothea()
    assert not priors.priors_available("dorothea")


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown gene embedding source"):
        priors.gene_embedding("nonsense")


@needs_shared
def test_string_embedding_places_interferon_partners_near_stat1() -> None:
    emb = priors.gene_embedding("string", n_components=32)
    assert np.allclose(np.linalg.norm(emb.to_numpy(), axis=1), 1.0, atol=1e-6)
    sims = emb.to_numpy() @ emb.loc["STAT1"].to_numpy()
    rank = {g: r for r, g in enumerate(emb.index[np.argsort(-sims)])}
    # STAT2 and IRF9 form ISGF3 with STAT1: they must be among its closest genes.
    assert rank["STAT2"] < 50 and rank["IRF9"] < 50
    # An unrelated metabolic enzyme must be far away.
    assert rank["CYP3A4"] > 1000


@needs_shared
def test_combined_embedding_restricts_and_concatenates() -> None:
    emb = priors.gene_embedding("go+dorothea", genes=["STAT1", "MYC", "NOT_A_GENE"], n_components=8)
    assert list(emb.index) == ["STAT1", "MYC"]
    assert emb.shape[1] == 16
    assert all(c.startswith(("go_", "dorothea_")) for c in emb.columns)


@needs_shared
def test_drug_fingerprints_are_deterministic_and_discriminative() -> None:
    pytest.importorskip("rdkit", reason="needs the chem extra: pip install 'celltwin[chem]'")
    smiles = priors.read_smiles()
    assert len(smiles) == 188
    names = list(smiles)[:20]
    fp = priors.drug_embedding({n: smiles[n] for n in names}, n_bits=1024)
    again = priors.drug_embedding({n: smiles[n] for n in names}, n_bits=1024)
    assert fp.shape == (20, 1024)
    assert np.array_equal(fp.to_numpy(), again.to_numpy())
    assert set(np.unique(fp.to_numpy())) <= {0.0, 1.0}
    # distinct molecules get distinct fingerprints
    assert len({tuple(r) for r in fp.to_numpy()}) == 20
    bad = priors.drug_embedding({"ok": "CCO", "bad": "not a smiles"}, n_bits=64)
    assert list(bad.index) == ["ok"]
