"""Public single-cell perturbation datasets that users download from the internet.

The files are the harmonised h5ad releases of scPerturb (Peidli et al. 2024, Zenodo record
13350497, v1.4, CC BY 4.0) and the Virtual Cell Challenge 2025 H1 training set (Arc Institute).
They are large (0.7-15 GB) and cannot be fetched on a machine without internet: download them
elsewhere and put them in the cache folder under the file name shown by ``celltwin data list``.

Checksums: Zenodo publishes an MD5 and a size for each file; they are pinned where they could
be confirmed (Norman 2019). For the other files no provider checksum could be confirmed, so
``sha256`` and ``md5`` are ``None``: the first download logs the file's SHA-256 so it can be
pinned here.

Building converts the file with :func:`celltwin.io.to_canonical`, telling
it what the harmonised files leave generic: the perturbation modality (scPerturb says only
"CRISPR") and, for single-line screens, the context. Each builder reads the whole file into
memory (Replogle K562 essential is a dense ~10 GB matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anndata
from anndata import AnnData

from .._keys import PERTURBATION_TYPES
from ..io import to_canonical
from ._registry import DatasetEntry, Source, register

_SCPERTURB = "https://zenodo.org/records/13350497/files/{}?download=1"
_SCPERTURB_NOTE = "scPerturb v1.4 (Zenodo record 13350497, CC BY 4.0)"
_VCC_H1 = (
    "https://storage.googleapis.com/arc-institute-virtual-cell-atlas/"
    "virtual-cell-challenge/2025/train/adata_Training.h5ad"
)


def build_with_adapter(
    paths: Sequence[Path],
    *,
    convention: str,
    perturbation_type: str,
    context: str | None,
) -> AnnData:
    """Read ``paths[0]`` and make it canonical with :func:`celltwin.io.to_canonical`.

    Parameters
    ----------
    paths
        One h5ad file.
    convention
        The adapter convention of the file (``"scperturb"``, ``"vcc"``).
    perturbation_type
        Modality of the non-control cells (one of :data:`celltwin._keys.PERTURBATION_TYPES`);
        the harmonised files only say "CRISPR", which cannot tell CRISPRi from CRISPRa.
    context
        One context for every cell, or ``None`` to take it from the file's cell-line column.
    """
    if perturbation_type not in PERTURBATION_TYPES:
        raise ValueError(
            f"'perturbation_type' must be one of {PERTURBATION_TYPES} (got {perturbation_type!r})"
        )
    return to_canonical(
        anndata.read_h5ad(paths[0]),
        convention=convention,
        perturbation_type=perturbation_type,
        context=context,
    )


def _remote(
    *,
    name: str,
    description: str,
    citation: str,
    url: str,
    filename: str,
    shape: tuple[int, int],
    convention: str,
    perturbation_type: str,
    context: str | None,
    note: str,
    license: str,
    md5: str | None = None,
    size: int | None = None,
) -> None:
    register(
        DatasetEntry(
            name=name,
            kind="anndata",
            description=description,
            citation=citation,
            sources=(
                Source(url=url, sha256=None, md5=md5, filename=filename, size=size, note=note),
            ),
            build=partial(
                build_with_adapter,
                convention=convention,
                perturbation_type=perturbation_type,
                context=context,
            ),
            shape=shape,
            available_offline=False,
            license=license,
            extra={"convention": convention, "perturbation_type": perturbation_type},
        )
    )


_remote(
    name="norman2019",
    description=(
        "Norman 2019 Perturb-seq, K562 CRISPRa: single and paired activations of 105 genes "
        "(131 pairs) + controls, raw counts (scPerturb 'filtered' release, 0.7 GB)."
    ),
    citation=(
        "Norman T.M. et al. Exploring genetic interaction manifolds constructed from rich "
        "single-cell phenotypes. Science 365, 786-793 (2019)."
    ),
    url=_SCPERTURB.format("NormanWeissman2019_filtered.h5ad"),
    filename="NormanWeissman2019_filtered.h5ad",
    md5="c870e6967d91c017d9da827bab183cd6",
    size=698_680_199,
    shape=(111_445, 33_694),
    convention="scperturb",
    perturbation_type="crispra",
    context="K562",
    note=_SCPERTURB_NOTE,
    license="CC BY 4.0 (scPerturb)",
)
_remote(
    name="replogle2022_k562_essential",
    description=(
        "Replogle 2022 Perturb-seq, K562 CRISPRi of ~2,000 essential genes + non-targeting "
        "controls, raw counts (scPerturb release, dense, ~10 GB). Ranked signatures of 585 "
        "of these knockdowns are the 'replogle2022_k562' entry."
    ),
    citation=(
        "Replogle J.M. et al. Mapping information-rich genotype-phenotype landscapes with "
        "genome-scale Perturb-seq. Cell 185, 2559-2575 (2022)."
    ),
    url=_SCPERTURB.format("ReplogleWeissman2022_K562_essential.h5ad"),
    filename="ReplogleWeissman2022_K562_essential.h5ad",
    shape=(310_385, 8_563),
    convention="scperturb",
    perturbation_type="crispri",
    context="K562",
    note=_SCPERTURB_NOTE,
    license="CC BY 4.0 (scPerturb)",
)
_remote(
    name="replogle2022_rpe1_essential",
    description=(
        "Replogle 2022 Perturb-seq, RPE1 CRISPRi of ~2,400 essential genes + non-targeting "
        "controls, raw counts (scPerturb release, dense)."
    ),
    citation=(
        "Replogle J.M. et al. Mapping information-rich genotype-phenotype landscapes with "
        "genome-scale Perturb-seq. Cell 185, 2559-2575 (2022)."
    ),
    url=_SCPERTURB.format("ReplogleWeissman2022_rpe1.h5ad"),
    filename="ReplogleWeissman2022_rpe1.h5ad",
    shape=(247_914, 8_749),
    convention="scperturb",
    perturbation_type="crispri",
    context="RPE1",
    note=_SCPERTURB_NOTE,
    license="CC BY 4.0 (scPerturb)",
)
_remote(
    name="adamson2016",
    description=(
        "Adamson 2016 Perturb-seq, K562 CRISPRi of unfolded-protein-response genes "
        "(GSM2406681, experiment 10X010), raw counts (scPerturb release)."
    ),
    citation=(
        "Adamson B. et al. A multiplexed single-cell CRISPR screening platform enables "
        "systematic dissection of the unfolded protein response. Cell 167, 1867-1882 (2016)."
    ),
    url=_SCPERTURB.format("AdamsonWeissman2016_GSM2406681_10X010.h5ad"),
    filename="AdamsonWeissman2016_GSM2406681_10X010.h5ad",
    shape=(65_337, 32_738),
    convention="scperturb",
    perturbation_type="crispri",
    context="K562",
    note=_SCPERTURB_NOTE,
    license="CC BY 4.0 (scPerturb)",
)
_remote(
    name="srivatsan2020_sciplex3",
    description=(
        "sci-Plex3 (Srivatsan 2020): A549, K562 and MCF7 cells treated with 188 compounds at "
        "4 doses for 24 h, raw counts (scPerturb v1.4 release, 2.5 GB). The ranked signatures "
        "derived from it are the 'sciplex3' entry."
    ),
    citation=(
        "Srivatsan S.R. et al. Massively multiplex chemical transcriptomics at single-cell "
        "resolution. Science 367, 45-51 (2020)."
    ),
    url=_SCPERTURB.format("SrivatsanTrapnell2020_sciplex3.h5ad"),
    filename="SrivatsanTrapnell2020_sciplex3.h5ad",
    shape=(799_317, 110_983),
    convention="scperturb",
    perturbation_type="drug",
    context=None,
    note=_SCPERTURB_NOTE,
    license="CC BY 4.0 (scPerturb)",
)
_remote(
    name="vcc2025_h1",
    description=(
        "Virtual Cell Challenge 2025 training set: H1 human embryonic stem cells, CRISPRi of "
        "150 genes + non-targeting controls, raw counts (15.5 GB)."
    ),
    citation=(
        "Roohani Y.H. et al. Virtual Cell Challenge: toward a Turing test for the virtual "
        "cell. Cell 188 (2025). Data: Arc Institute, virtualcellchallenge.org."
    ),
    url=_VCC_H1,
    filename="vcc2025_h1_adata_Training.h5ad",
    shape=(221_273, 18_080),
    convention="vcc",
    perturbation_type="crispri",
    context="H1",
    note="Arc Institute Virtual Cell Challenge 2025 (training data); see its terms of use",
    license="Virtual Cell Challenge terms (no licence file in the bucket)",
)
