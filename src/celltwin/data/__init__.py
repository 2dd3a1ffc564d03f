"""Datasets: a registry of public sources, downloads with checksums, canonical builds.

:func:`list_datasets` shows what is registered; :func:`fetch` downloads a dataset's files (or
takes them from the shared folder), builds canonical data and writes it; :func:`load` and
:func:`load_signatures` return it in memory. Files land in the download cache
(``CELLTWIN_CACHE``, default ``~/.cache/celltwin``) under their registry file names, so a file
obtained elsewhere can be put there by hand.
"""

# Modules that register datasets (imported for that effect).
from . import _kang, _lincs, _papalexi, _perturbench, _priors, _remote, _signature_sets  # noqa: F401
from ._api import fetch, list_datasets, load, load_signatures
from ._download import DownloadError, download, fetch_source
from ._registry import DatasetEntry, Source, entries, get_entry, register

__all__ = [
    "DatasetEntry",
    "DownloadError",
    "Source",
    "download",
    "entries",
    "fetch",
    "fetch_source",
    "get_entry",
    "list_datasets",
    "load",
    "load_signatures",
    "register",
]
