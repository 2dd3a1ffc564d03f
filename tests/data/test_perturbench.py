"""norman2019_subset and mcfaline2023_subset built from the real shared files."""

from __future__ import annotations

import anndata
import numpy as np
import pytest

from celltwin._keys import CONTROL, split_combination
from celltwin._settings import shared_dir
from celltwin.data import get_entry
from celltwin.data._checksums import hash_file
from celltwin.data._perturbench import build_mcfaline2023, build_norman2019

NORMAN = shared_dir() / "data" / "norman2019"
MCFALINE = shared_dir() / "data" / "mcfaline2023_gbm_subset.h5ad"
pytestmark = pytest.mark.skipif(
    not (NORMAN.is_dir() and MCFALINE.is_file()),
    reason=f"shared Norman / McFaline files not found under {shared_dir()}",
)


@pytest.fixture(scope="module")
def norman() -> anndata.AnnData:
    return build_norman2019(
        [NORMAN / "norman2019_k562_subset.h5ad", NORMAN / "norman2019_gi_labels.csv"]
    )


def test_norman_is_canonical(norman: anndata.AnnData) -> None:
    perts = set(norman.obs["perturbation"].astype(str)) - {CONTROL}
    singles = {p for p in perts if len(split_combination(p)) == 1}
    pairs = perts - singles
    assert (len(singles), len(pairs)) == (18, 15)
    # Pairs are canonical (genes sorted): the source's SET+KLF1 is KLF1+SET.
    assert "KLF1+SET" in pairs and "SET+KLF1" not in pairs
    assert all(p == "+".join(sorted(split_combination(p))) for p in pairs)
    both_seen = {p for p in pairs if set(split_combination(p)) <= singles}
    assert len(both_seen) == 5 and "KLF1+MAP2K6" in both_seen
    assert set(norman.obs["context"]) == {"K562"}
    assert set(norman.obs["perturbation_type"]) == {"crispra", CONTROL}
    assert "dose" not in norman.obs  # the source's placeholder is dropped
    assert norman.shape == get_entry("norman2019_subset").shape
    # X is log1p of the counts layer times one size factor per cell (CP10k).
    counts = norman.layers["counts"][:50].toarray()
    x = norman.X[:50].toarray()
    for row in range(50):
        nz = counts[row] > 0
        factor = np.expm1(x[row, nz]) / counts[row, nz]
        np.testing.assert_allclose(factor, np.median(factor), rtol=1e-3)
        assert not np.any(x[row, ~nz])
    labels = norman.uns["gi_labels"]
    assert len(labels) == 127 and labels.loc["KLF1_MAP2K6", "ts_norm"] > 0


def test_mcfaline_has_nine_knockdowns_in_three_lines() -> None:
    adata = build_mcfaline2023([MCFALINE])
    assert sorted(set(adata.obs["context"])) == ["A172", "T98G", "U87MG"]
    per_line = adata.obs.groupby("context", observed=True)["perturbation"].nunique()
    assert (per_line == 10).all()  # 9 knockdowns + control in every line
    assert set(adata.obs["perturbation_type"]) == {"crispri", CONTROL}
    assert adata.shape == get_entry("mcfaline2023_subset").shape


def test_registered_checksums_match_the_shared_files() -> None:
    for name in ("norman2019_subset", "mcfaline2023_subset"):
        for source in get_entry(name).sources:
            path = shared_dir() / source.url.removeprefix("shared:")
            assert hash_file(path, ("sha256",))["sha256"] == source.sha256, path
            assert "perturbench" in source.note or "Perturbseq_GI" in source.note
