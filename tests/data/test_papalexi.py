"""papalexi2021_subset built from the real shared file."""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pytest
import scipy.sparse as sp

from celltwin._keys import CONTROL
from celltwin._settings import shared_dir
from celltwin.data import get_entry, load
from celltwin.data._papalexi import build_papalexi2021

SRC = shared_dir() / "data" / "papalexi2021_thp1_subset.h5ad"
pytestmark = pytest.mark.skipif(
    not SRC.is_file(), reason=f"shared Papalexi file not found at {SRC} (set CELLTWIN_SHARED)"
)


@pytest.fixture(scope="module")
def built() -> anndata.AnnData:
    return build_papalexi2021([SRC])


def test_canonical_structure(built: anndata.AnnData) -> None:
    obs = built.obs
    perts = set(obs["perturbation"])
    assert CONTROL in perts and "non-targeting" not in perts
    assert len(perts - {CONTROL}) == 25  # 25 targets + control, as in the source file
    assert set(obs.loc[obs["perturbation"] == CONTROL, "perturbation_type"]) == {"control"}
    assert set(obs.loc[obs["perturbation"] != CONTROL, "perturbation_type"]) == {"crispr_ko"}
    assert set(obs["context"]) == {"THP-1"}
    assert sorted(set(obs["batch"])) == ["rep_1", "rep_2", "rep_3"]
    assert built.n_vars == 299 and built.var_names.is_unique
    assert built.shape == get_entry("papalexi2021_subset").shape


def test_counts_are_raw_integers_and_x_is_their_log_normalisation(
    built: anndata.AnnData,
) -> None:
    counts = built.layers["counts"]
    assert sp.issparse(counts)
    assert np.array_equal(counts.data, np.round(counts.data)) and counts.data.min() >= 0
    src = anndata.read_h5ad(SRC)
    # Counts are the source's counts for the kept cells, untouched.
    rows = src.obs_names.get_indexer(built.obs_names)
    assert (abs(src.X[rows] - counts)).max() == 0
    # X = log1p(counts / total * 1e4), checked on a few cells.
    c = counts[:5].toarray().astype(np.float64)
    expected = np.log1p(c / c.sum(axis=1, keepdims=True) * 1e4)
    np.testing.assert_allclose(built.X[:5].toarray(), expected, rtol=1e-5, atol=1e-5)
    assert built.uns["celltwin"]["normalization"]["target_sum"] == 1e4


def test_weak_guide_rule_drops_exactly_the_cells_below_threshold(
    built: anndata.AnnData,
) -> None:
    src = anndata.read_h5ad(SRC)
    g = np.asarray(src.obsm["grna_counts"], dtype=float)
    frac = g.max(axis=1) / g.sum(axis=1)
    np.testing.assert_allclose(frac, src.obs["guide_frac"])  # the packagers' number
    rule = built.uns["celltwin"]["guide_assignment"]
    assert rule["min_guide_frac"] == 0.5
    assert rule["n_cells_before"] == src.n_obs == 20729
    assert rule["n_cells_dropped"] == int((frac < 0.5).sum()) == 966
    assert rule["n_cells_kept"] == built.n_obs == 20729 - 966
    assert set(built.obs_names) == set(src.obs_names[frac >= 0.5])
    assert built.obs["guide_frac"].min() >= 0.5
    # Every perturbation keeps cells (the smallest, SPI1, has 47 of 48).
    assert built.obs["perturbation"].value_counts().min() > 0


def test_threshold_is_an_option() -> None:
    everything = build_papalexi2021([SRC], min_guide_frac=0.0)
    assert everything.n_obs == 20729
    assert everything.uns["celltwin"]["guide_assignment"]["n_cells_dropped"] == 0
    with pytest.raises(ValueError, match="min_guide_frac"):
        build_papalexi2021([SRC], min_guide_frac=1.5)


def test_load_builds_once_into_the_cache(tmp_path: Path) -> None:
    first = load("papalexi2021_subset", cache_dir=tmp_path, progress=False)
    built_file = tmp_path / "built" / "papalexi2021_subset.h5ad"
    assert built_file.is_file()
    mtime = built_file.stat().st_mtime_ns
    again = load("papalexi2021_subset", cache_dir=tmp_path, progress=False)
    assert built_file.stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert again.shape == first.shape == (19763, 299)
    assert again.uns["celltwin"]["dataset"]["name"] == "papalexi2021_subset"
    # No source was copied into the cache: shared files are read in place.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]
