"""Priors as datasets: `fetch` takes them from the shared folder, else downloads them (local
HTTP server) into the cache, checked against the pinned SHA-256, where the readers find them."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from celltwin import data, priors

GMT = b"SET_A\tdesc\tSTAT1\tSTAT2\nSET_B\tdesc\tTP53\n"


@pytest.fixture
def served_hallmark(file_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The 'hallmark' prior pinned to a small file that only the local server holds."""
    pinned = dataclasses.replace(
        priors.PRIOR_FILES["hallmark"], sha256=hashlib.sha256(GMT).hexdigest(), size=len(GMT)
    )
    monkeypatch.setitem(priors.PRIOR_FILES, "hallmark", pinned)
    monkeypatch.setenv("CELLTWIN_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("CELLTWIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CELLTWIN_PRIORS_URL", file_server.url("/priors"))
    return file_server


def test_every_prior_file_is_registered_with_a_checksum() -> None:
    for name in ("go", "string", "dorothea", "progeny"):
        entry = data.get_entry(name)
        assert entry.kind == "prior"
        prior = priors.PRIOR_FILES[name]
        assert len(prior.sha256) == 64 and prior.size > 0
        assert prior.url.startswith(("http://", "https://")) and prior.url.endswith(prior.filename)
    assert "go" in set(data.list_datasets()["name"])


def test_fetch_downloads_into_the_cache_and_readers_use_it(served_hallmark, tmp_path) -> None:
    served_hallmark.files["/priors/msigdb_hallmark_v7.5.1.gmt"] = GMT
    with pytest.raises(FileNotFoundError, match="celltwin data fetch hallmark"):
        priors.read_gene_sets(name="hallmark")
    path = data.fetch("hallmark", progress=False)
    assert path == tmp_path / "cache" / "msigdb_hallmark_v7.5.1.gmt"
    assert path.read_bytes() == GMT
    assert priors.read_gene_sets(name="hallmark") == {
        "SET_A": ["STAT1", "STAT2"],
        "SET_B": ["TP53"],
    }
    # Fetched again: the cached file is used, no second request.
    assert data.fetch("hallmark", progress=False) == path
    assert len(served_hallmark.requests) == 1
    copy = data.fetch("hallmark", out=tmp_path / "copy.gmt", progress=False)
    assert copy.read_bytes() == GMT


def test_a_corrupt_download_is_refused_and_not_kept(served_hallmark, tmp_path) -> None:
    served_hallmark.files["/priors/msigdb_hallmark_v7.5.1.gmt"] = GMT.replace(b"TP53", b"TP63")
    with pytest.raises(data.DownloadError, match="sha256"):
        data.fetch("hallmark", progress=False)
    assert not (tmp_path / "cache" / "msigdb_hallmark_v7.5.1.gmt").exists()


def test_the_shared_file_is_used_without_a_download(served_hallmark, tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    (shared / "priors" / "genesets").mkdir(parents=True)
    (shared / "priors/genesets/msigdb_hallmark_v7.5.1.gmt").write_bytes(GMT)
    monkeypatch.setenv("CELLTWIN_SHARED", str(shared))
    assert (
        data.fetch("hallmark", progress=False)
        == shared / "priors/genesets/msigdb_hallmark_v7.5.1.gmt"
    )
    assert served_hallmark.requests == []


def test_priors_have_no_build() -> None:
    with pytest.raises(ValueError, match="prior-knowledge file"):
        data.load("go")
    with pytest.raises(ValueError, match="'out' is required"):
        data.fetch("kang2018")
