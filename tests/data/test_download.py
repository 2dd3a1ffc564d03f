"""Downloads against a local HTTP server: full, resumed, corrupt, missing, unreachable, cached."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from celltwin.data import DownloadError, Source, download, fetch_source

DATA = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the chunk size
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


def test_full_download(file_server, tmp_path: Path) -> None:
    file_server.files["/f.bin"] = DATA
    dest = tmp_path / "sub" / "f.bin"
    got = download(file_server.url("/f.bin"), dest, sha256=SHA, size=len(DATA), progress=False)
    assert got == dest
    assert dest.read_bytes() == DATA
    assert not dest.with_name("f.bin.part").exists()
    assert file_server.requests == [("/f.bin", None)]


def test_resume_after_interrupted_download(file_server, tmp_path: Path) -> None:
    file_server.files["/f.bin"] = DATA
    file_server.truncate_once["/f.bin"] = 300_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="call again to resume"):
        download(file_server.url("/f.bin"), dest, sha256=SHA, progress=False)
    part = tmp_path / "f.bin.part"
    assert not dest.exists()
    assert part.stat().st_size == 300_000

    download(file_server.url("/f.bin"), dest, sha256=SHA, md5=MD5, progress=False)
    assert dest.read_bytes() == DATA
    # The second request asked only for the missing bytes.
    assert file_server.requests[-1] == ("/f.bin", "bytes=300000-")
    assert not part.exists()


def test_resume_from_existing_partial_and_restart_when_range_ignored(
    file_server, tmp_path: Path
) -> None:
    file_server.files["/f.bin"] = DATA
    file_server.files["/g.bin"] = DATA
    file_server.no_range.add("/g.bin")
    for name in ("f.bin", "g.bin"):
        (tmp_path / f"{name}.part").write_bytes(DATA[:1000])
        download(file_server.url(f"/{name}"), tmp_path / name, sha256=SHA, progress=False)
        assert (tmp_path / name).read_bytes() == DATA
    assert file_server.requests == [("/f.bin", "bytes=1000-"), ("/g.bin", "bytes=1000-")]


def test_resume_false_starts_over(file_server, tmp_path: Path) -> None:
    file_server.files["/f.bin"] = DATA
    (tmp_path / "f.bin.part").write_bytes(b"garbage")
    download(file_server.url("/f.bin"), tmp_path / "f.bin", resume=False, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert file_server.requests == [("/f.bin", None)]


def test_checksum_mismatch_deletes_and_names_both(file_server, tmp_path: Path) -> None:
    file_server.files["/f.bin"] = DATA
    wrong = "0" * 64
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError) as err:
        download(file_server.url("/f.bin"), dest, sha256=wrong, progress=False)
    assert wrong in str(err.value) and SHA in str(err.value)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()

    with pytest.raises(DownloadError, match="but 5 are expected"):
        download(file_server.url("/f.bin"), dest, size=5, progress=False)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_unpinned_download_logs_its_sha256(file_server, tmp_path: Path, caplog) -> None:
    file_server.files["/f.bin"] = DATA
    with caplog.at_level("WARNING", logger="celltwin"):
        download(file_server.url("/f.bin"), tmp_path / "f.bin", progress=False)
    assert SHA in caplog.text


def test_http_404(file_server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(file_server.url("/missing.bin"), tmp_path / "m.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_explains_how_to_provide_the_file(
    closed_port: int, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port}/f.bin"
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(DownloadError) as err:
        download(url, dest, progress=False, timeout=5)
    msg = str(err.value)
    assert url in msg
    assert "no internet" in msg
    assert str(dest) in msg and "by hand" in msg
    assert not dest.exists()


def test_fetch_source_cache_hit_skips_network(file_server, tmp_path: Path) -> None:
    file_server.files["/f.bin"] = DATA
    src = Source(url=file_server.url("/f.bin"), sha256=SHA, filename="f.bin", size=len(DATA))
    first = fetch_source(src, cache_dir=tmp_path, progress=False)
    assert first == tmp_path / "f.bin" and first.read_bytes() == DATA
    n = len(file_server.requests)
    again = fetch_source(src, cache_dir=tmp_path, progress=False)
    assert again == first and len(file_server.requests) == n
    forced = fetch_source(src, cache_dir=tmp_path, progress=False, force=True)
    assert forced.read_bytes() == DATA and len(file_server.requests) == n + 1


def test_file_put_in_cache_by_hand_is_used_and_checked(closed_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port}/f.bin"
    (tmp_path / "f.bin").write_bytes(DATA)
    src = Source(url=url, sha256=SHA, filename="f.bin")
    assert fetch_source(src, cache_dir=tmp_path, progress=False).read_bytes() == DATA
    # A wrong file by hand is reported, not silently used.
    (tmp_path / "g.bin").write_bytes(DATA[:-1])
    bad = Source(url=url, sha256=SHA, filename="g.bin")
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_source(bad, cache_dir=tmp_path, progress=False)


def test_shared_source(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "x.txt").write_bytes(b"hello")
    monkeypatch.setenv("CELLTWIN_SHARED", str(tmp_path / "shared"))
    sha = hashlib.sha256(b"hello").hexdigest()
    src = Source(url="shared:data/x.txt", sha256=sha, filename="x.txt")
    got = fetch_source(src, cache_dir=tmp_path / "cache", progress=False)
    assert got == (tmp_path / "shared" / "data" / "x.txt").resolve()
    missing = Source(url="shared:data/nope.txt", sha256=None, filename="nope.txt")
    with pytest.raises(FileNotFoundError, match="CELLTWIN_SHARED"):
        fetch_source(missing, cache_dir=tmp_path / "cache", progress=False)


def test_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kind 'ftp'"):
        fetch_source(Source(url="ftp://x/y", sha256=None, filename="y"), cache_dir=tmp_path)


# --- pypi: sources, served by a local package index -----------------------------------------


def _wheel(name: str, version: str) -> bytes:
    buf = io.BytesIO()
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{name}/__init__.py", "")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")
    return buf.getvalue()


@pytest.fixture
def local_index(file_server, monkeypatch):
    wheel = _wheel("ctwintiny", "0.1")
    fname = "ctwintiny-0.1-py3-none-any.whl"
    sha = hashlib.sha256(wheel).hexdigest()
    file_server.files[f"/files/{fname}"] = wheel
    file_server.files["/simple/ctwintiny/"] = (
        f'<html><body><a href="/files/{fname}#sha256={sha}">{fname}</a></body></html>'
    ).encode()
    file_server.content_types["/simple/ctwintiny/"] = "text/html"
    # Only the local index: no config files, find-links or extra indexes of this machine.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", file_server.url("/simple/"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    return fname, wheel, sha


def test_pypi_source_downloads_and_checks_the_wheel(local_index, tmp_path: Path) -> None:
    fname, wheel, sha = local_index
    src = Source(url="pypi:ctwintiny==0.1", sha256=sha, filename=fname)
    got = fetch_source(src, cache_dir=tmp_path, progress=False)
    assert got == tmp_path / fname and got.read_bytes() == wheel
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pip-")]
    (tmp_path / fname).unlink()
    bad = Source(url="pypi:ctwintiny==0.1", sha256="f" * 64, filename=fname)
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_source(bad, cache_dir=tmp_path, progress=False)
    assert not (tmp_path / fname).exists()


def test_pypi_source_failure_is_explained(local_index, tmp_path: Path) -> None:
    src = Source(url="pypi:ctwintiny==9.9", sha256=None, filename="ctwintiny-9.9.whl")
    with pytest.raises(DownloadError, match=r"pip download --no-deps ctwintiny==9\.9"):
        fetch_source(src, cache_dir=tmp_path, progress=False)


def test_stale_complete_partial_is_downloaded_again(file_server, tmp_path: Path) -> None:
    # A .part as long as the file: the server answers 416 and the download starts over.
    file_server.files["/f.bin"] = DATA
    (tmp_path / "f.bin.part").write_bytes(DATA)
    download(file_server.url("/f.bin"), tmp_path / "f.bin", sha256=SHA, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert file_server.requests == [("/f.bin", f"bytes={len(DATA)}-"), ("/f.bin", None)]
