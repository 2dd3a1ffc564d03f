"""Remote (internet) datasets: registered sensibly, fail clearly offline, build via the adapter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData

from celltwin._keys import CONTROL
from celltwin.data import DownloadError, entries, fetch, get_entry, load
from celltwin.data import _registry as registry

REMOTE = [
    "norman2019",
    "replogle2022_k562_essential",
    "replogle2022_rpe1_essential",
    "adamson2016",
    "srivatsan2020_sciplex3",
    "vcc2025_h1",
]


def _point_to(monkeypatch, name: str, url: str, **source_changes) -> None:
    """Replace the entry's source URL (and optionally checksums) for this test only."""
    entry = get_entry(name)
    src = dataclasses.replace(entry.sources[0], url=url, **source_changes)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, sources=(src,)))


def test_remote_entries_are_registered_with_public_https_sources() -> None:
    names = {e.name for e in entries()}
    assert set(REMOTE) <= names
    for name in REMOTE:
        e = get_entry(name)
        assert e.kind == "anndata" and not e.available_offline
        assert e.shape is not None and min(e.shape) > 0
        (src,) = e.sources
        assert src.url.startswith("https://") and src.filename.endswith(".h5ad")
        assert src.note and e.citation and e.license


@pytest.mark.parametrize("name", REMOTE)
def test_remote_entry_fails_offline_with_a_clear_error(
    name: str, closed_port: int, tmp_path: Path, monkeypatch
) -> None:
    filename = get_entry(name).sources[0].filename
    url = f"http://127.0.0.1:{closed_port}/{filename}"
    _point_to(monkeypatch, name, url)
    out = tmp_path / "out" / f"{name}.h5ad"
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        fetch(name, out=out, cache_dir=cache, progress=False)
    msg = str(err.value)
    assert url in msg and "no internet" in msg
    assert str(cache / filename) in msg  # where to put the file by hand
    assert not out.exists()
    assert not (cache / filename).exists()


def _scperturb_like(n_per: int = 20) -> AnnData:
    rng = np.random.default_rng(0)
    labels = ["control"] * n_per + ["GENE1"] * n_per + ["GENE2"] * n_per
    counts = rng.poisson(3.0, size=(len(labels), 30)).astype(np.float32)
    obs = pd.DataFrame(
        {
            "perturbation": labels,
            "perturbation_type": "CRISPR",
            "cell_line": "K562",
        },
        index=[f"cell{i}" for i in range(len(labels))],
    )
    return AnnData(X=counts, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(30)]))


def test_remote_builder_converts_with_the_io_adapter(
    file_server, tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("celltwin.io", reason="needs celltwin.io.to_canonical")
    from celltwin import io as ctio

    if not hasattr(ctio, "to_canonical"):
        pytest.skip("celltwin.io.to_canonical is not available yet")
    raw = _scperturb_like()
    buf = tmp_path / "raw.h5ad"
    raw.write_h5ad(buf)
    file_server.files["/norman.h5ad"] = buf.read_bytes()
    _point_to(
        monkeypatch, "norman2019", file_server.url("/norman.h5ad"), md5=None, size=None, sha256=None
    )
    adata = load("norman2019", cache_dir=tmp_path / "cache", progress=False)
    obs = adata.obs
    assert adata.shape == raw.shape
    assert set(obs["perturbation"]) == {CONTROL, "GENE1", "GENE2"}
    # scPerturb says only "CRISPR"; the entry knows Norman 2019 is CRISPRa.
    assert set(obs.loc[obs["perturbation"] == CONTROL, "perturbation_type"]) == {"control"}
    assert set(obs.loc[obs["perturbation"] != CONTROL, "perturbation_type"]) == {"crispra"}
    assert set(obs["context"]) == {"K562"}
    counts = adata.layers["counts"]
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    np.testing.assert_array_equal(counts, raw.X)
    assert adata.uns["celltwin"]["dataset"]["name"] == "norman2019"
