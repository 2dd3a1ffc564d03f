"""The prior-knowledge files as data: where each comes from, its checksum, where it is found.

One table (:data:`PRIOR_FILES`) names every file the readers use: its place in the shared folder,
the file name in the download cache, the address it is served from, its SHA-256 and size, and the
public source it was derived from. :mod:`celltwin.data` registers a dataset per entry (``celltwin
data fetch go``), so priors are fetched, checked and cached like any dataset; the table lives here
because ``priors`` sits below ``data`` and its readers must find the files without importing it.

A reader looks for a file in the shared folder (``CELLTWIN_SHARED``, default ``../shared``), then
in the download cache (``CELLTWIN_CACHE``); :func:`prior_path` says how to get it otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .._settings import cache_dir, shared_dir

#: Where the project serves its prior files (the shared folder's files, byte for byte: the
#: checksums below are theirs); ``CELLTWIN_PRIORS_URL`` replaces it (a mirror, or a local server
#: in tests). The files are derived from the public sources named per entry (``derived_from``),
#: which publish other formats, so they are served as the project built them.
PRIORS_BASE_URL: Final = "https://github.com/celltwin/celltwin/releases/download/priors-v1"


@dataclass(frozen=True)
class PriorFile:
    """One prior-knowledge file.

    Parameters
    ----------
    name
        Registry name (``go``, ``string``, ...): the ``name`` of :func:`celltwin.data.fetch`.
    shared
        Path inside the shared folder.
    sha256, size
        Checksum and size of the file as served (and as in the shared folder).
    description
        What the file holds.
    derived_from
        The public source it was made from, for people (a citation, not the served file).
    license
        Licence of the content.
    """

    name: str
    shared: str
    sha256: str
    size: int
    description: str
    derived_from: str
    license: str

    @property
    def filename(self) -> str:
        """File name in the download cache (and on the server)."""
        return Path(self.shared).name

    @property
    def url(self) -> str:
        """Download address: ``CELLTWIN_PRIORS_URL`` (or :data:`PRIORS_BASE_URL`) + file name."""
        base = os.environ.get("CELLTWIN_PRIORS_URL") or PRIORS_BASE_URL
        return f"{base.rstrip('/')}/{self.filename}"


_FILES: Final = (
    PriorFile(
        "go",
        "priors/go_gene2go_human.tsv.gz",
        "730cd024e5c7947c9ddee3baf2a672d34dc0784fd11a6cdb2b626b12a98e7ba1",
        1_595_194,
        "GO annotations of human genes (NCBI gene2go): 348k gene-term pairs, 20,728 genes.",
        "Bioconductor org.Hs.eg.db 3.16 (Debian r-bioc-org.hs.eg.db), GO table as TSV",
        "Artistic-2.0",
    ),
    PriorFile(
        "string",
        "priors/string_v12_edges.tsv.gz",
        "9fe3d599bd3aadeea64fb131cabda0d134a8b82ae6961209aedcb0292a54f6b1",
        1_998_360,
        "STRING v12 human protein interactions: 17,288 genes, 174,962 edges (score >= 700 "
        "plus each gene's top 3 edges at 400-699; text mining excluded).",
        "STRING v12 (string-db.org) via the dmfind R package",
        "CC BY 4.0",
    ),
    PriorFile(
        "dorothea",
        "priors/dorothea_human.tsv.gz",
        "3a712ddffb0add428e534f9d0229e949da3f8ca87ef7063454109c3ce837b9c3",
        1_742_377,
        "DoRothEA TF-target regulons: 454k edges, 1,333 TFs, confidence A-E, sign.",
        "saezlab/dorothea (R package data), as TSV",
        "GPL-3",
    ),
    PriorFile(
        "progeny",
        "priors/progeny_human.tsv.gz",
        "e96261e00947da61ff11da3559fbb0b10dbf403907b4499752f51250c1fbeb9a",
        6_405_528,
        "PROGENy pathway footprints: 14 pathways x ~22k genes (weight, p-value).",
        "Bioconductor progeny 1.20 (Debian r-bioc-progeny), as TSV",
        "Apache-2.0",
    ),
    PriorFile(
        "hallmark",
        "priors/genesets/msigdb_hallmark_v7.5.1.gmt",
        "de0fdee38af2611a284973f565df1a98bfa2385aecd7ba2ee3fe51208e753b40",
        48_244,
        "MSigDB Hallmark gene sets v7.5.1 (GMT).",
        "MSigDB via the pegasuspy package",
        "MSigDB terms of use",
    ),
    PriorFile(
        "c2cp",
        "priors/genesets/msigdb_c2cp_v7.5.1.gmt",
        "d24ccc3c7ecb9b5de54b0ac29a6db78d0465812dd1778c36fa19e53e9ad48f3e",
        1_277_787,
        "MSigDB C2 canonical pathways v7.5.1 (GMT).",
        "MSigDB via the pegasuspy package",
        "MSigDB terms of use",
    ),
    PriorFile(
        "go_bp",
        "priors/genesets/enrichr_go_bp_2023.gmt",
        "c40246c16d5ceaf1365333f142ca44bcc221d8433a41bdc0ca484a4024ad8eec",
        1_380_288,
        "Enrichr GO Biological Process 2023 gene sets (GMT).",
        "Enrichr via the blitzgsea package",
        "Enrichr terms of use",
    ),
    PriorFile(
        "kegg",
        "priors/genesets/enrichr_kegg_2021.gmt",
        "328cd8c193ee672cd5da00173c465dd32dd998eeffe81f1eddb572df9e57626d",
        208_443,
        "Enrichr KEGG 2021 Human gene sets (GMT).",
        "Enrichr via the blitzgsea package",
        "KEGG / Enrichr terms of use",
    ),
)

#: Every prior file by name (see :class:`PriorFile`).
PRIOR_FILES: Final[dict[str, PriorFile]] = {f.name: f for f in _FILES}


def prior_path(name: str) -> Path:
    """The local path of prior file ``name``: in the shared folder, else in the download cache.

    Raises
    ------
    FileNotFoundError
        When it is in neither, naming both places and the command that downloads it.
    """
    if name not in PRIOR_FILES:
        raise KeyError(f"unknown prior file {name!r}; choose from {sorted(PRIOR_FILES)}")
    entry = PRIOR_FILES[name]
    shared = shared_dir() / entry.shared
    if shared.is_file():
        return shared
    cached = cache_dir() / entry.filename
    if cached.is_file():
        return cached
    raise FileNotFoundError(
        f"prior-knowledge file for {name!r} not found at {shared} nor in the download cache "
        f"({cached}). Fix: `celltwin data fetch {name}` (or celltwin.data.fetch({name!r})) "
        "downloads it, or set CELLTWIN_SHARED to the folder that holds priors/."
    )


def priors_available(*names: str) -> bool:
    """Whether every prior file in ``names`` can be read here without a download."""
    try:
        for name in names:
            prior_path(name)
    except FileNotFoundError:
        return False
    return True
