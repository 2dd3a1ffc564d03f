"""Ranked-signature datasets kept in shared/ (prepared by the sigrecon R package).

Each file holds one context; an entry with several files (NeurIPS 2023: four PBMC cell types;
sci-Plex3: three cell lines) gives each file the context named here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..io import Ranking, RankSignatures, concat_signatures, read_signatures
from ._registry import DatasetEntry, Source, register

_SIGRECON = "montilab/sigrecon R package (GitHub), data/{}.rda"
_LICENSE = "sigrecon: MIT / GPL-3 (its files disagree); original data under their own terms"


def build_signatures(
    paths: Sequence[Path], *, contexts: Sequence[str], ranking: Ranking
) -> RankSignatures:
    """Read one signature file per context and stack them.

    Parameters
    ----------
    paths
        The files, in the order of ``contexts``.
    contexts
        Context of each file.
    ranking
        ``"full"`` or ``"top"`` (see :mod:`celltwin.io._signatures`).
    """
    if len(paths) != len(contexts):
        raise ValueError(f"{len(paths)} files for {len(contexts)} contexts {list(contexts)}")
    return concat_signatures(
        [
            read_signatures(p, context=c, ranking=ranking)
            for p, c in zip(paths, contexts, strict=True)
        ]
    )


def _register(
    *,
    name: str,
    description: str,
    citation: str,
    files: Sequence[tuple[str, str, str, int, str]],
    ranking: Ranking,
    shape: tuple[int, int],
) -> None:
    """``files``: (file name, context, sha256, size, sigrecon object) per context."""
    register(
        DatasetEntry(
            name=name,
            kind="signatures",
            description=description,
            citation=citation,
            sources=tuple(
                Source(
                    url=f"shared:data/signatures/{fname}",
                    sha256=sha,
                    filename=fname,
                    size=size,
                    note=_SIGRECON.format(obj),
                )
                for fname, _, sha, size, obj in files
            ),
            build=partial(build_signatures, contexts=[f[1] for f in files], ranking=ranking),
            shape=shape,
            available_offline=True,
            license=_LICENSE,
            extra={"ranking": ranking, "contexts": [f[1] for f in files]},
        )
    )


_REPLOGLE_CITATION = (
    "Replogle J.M. et al. Mapping information-rich genotype-phenotype landscapes with "
    "genome-scale Perturb-seq. Cell 185, 2559-2575 (2022)."
)
_REPLOGLE_DESCRIPTION = (
    "Replogle 2022 CRISPRi Perturb-seq, {line}: 585 knockdowns shared by K562 and RPE1; per "
    "knockdown the 1,000 most up-regulated genes in rank order ('up_full', top-k ranking) and "
    "the significant ones ('up'). Ranks only."
)

_register(
    name="replogle2022_k562",
    description=_REPLOGLE_DESCRIPTION.format(line="K562"),
    citation=_REPLOGLE_CITATION,
    files=[
        (
            "replogle2022_k562_top1000up.json.gz",
            "K562",
            "b18ecbee9eb777659e2084a9e7b59b7577eaa7c00d61bebaa6baf943c3603259",
            1_828_900,
            "perturbseq.k562",
        )
    ],
    ranking="top",
    shape=(585, 7_225),
)
_register(
    name="replogle2022_rpe1",
    description=_REPLOGLE_DESCRIPTION.format(line="RPE1"),
    citation=_REPLOGLE_CITATION,
    files=[
        (
            "replogle2022_rpe1_top1000up.json.gz",
            "RPE1",
            "21143bc9beba5422b1f556fe9c3358c1682cef5f9dcd3bf4e5071046ff4d51c0",
            1_768_575,
            "perturbseq.rpe1",
        )
    ],
    ranking="top",
    shape=(585, 7_225),
)
_register(
    name="neurips2023",
    description=(
        "NeurIPS 2023 single-cell perturbation challenge: 135 drugs x 4 PBMC cell types "
        "(contexts B, T, NK, myeloid); all 6,349 genes ranked from most up to most down "
        "(logFC x -log10 adj. p; full ranking), 'up' = top 100."
    ),
    citation=(
        "Szalata A. et al. A benchmark for prediction of transcriptomic responses to chemical "
        "perturbations across cell types. NeurIPS Datasets and Benchmarks (2024)."
    ),
    files=[
        (
            "neurips2023_pbmc_b.json.gz",
            "B",
            "72200855ca059871eefe898e5c190d7f20e8d0066133cc2fe4f832e89afb9eca",
            2_969_044,
            "neurips2023.b",
        ),
        (
            "neurips2023_pbmc_t.json.gz",
            "T",
            "9aa9f928f88248366ff558933fbabcb2793178a750417757a0890af90b643ab6",
            2_968_769,
            "neurips2023.t",
        ),
        (
            "neurips2023_pbmc_nk.json.gz",
            "NK",
            "c653377c8026f1b200b34216cad8381d15718edc3f8e95033817f0b037270152",
            2_963_792,
            "neurips2023.nk",
        ),
        (
            "neurips2023_pbmc_myeloid.json.gz",
            "myeloid",
            "260022eea432a2e7eeb956d93a9dec2138292276e8dc1e819b27b3f4f9bd31fb",
            2_967_075,
            "neurips2023.myeloid",
        ),
    ],
    ranking="full",
    shape=(540, 6_349),
)
_register(
    name="sciplex3",
    description=(
        "sci-Plex3 (Srivatsan 2020): 23 drugs x 3 cell lines (contexts A549, K562, MCF7); the "
        "genes tested for each drug ranked from most up to most down (full ranking), 'up' = "
        "significant up genes (at most 100)."
    ),
    citation=(
        "Srivatsan S.R. et al. Massively multiplex chemical transcriptomics at single-cell "
        "resolution. Science 367, 45-51 (2020)."
    ),
    files=[
        (
            "sciplex3_a549.json.gz",
            "A549",
            "e9484bb7ec19d69fb54a2a1b2191cd2b65c4cb4085626c888607a6ed27622cb5",
            753_528,
            "sciplex.a549",
        ),
        (
            "sciplex3_k562.json.gz",
            "K562",
            "1c72af10d12935d45e9cfcf79169c391d86eba367e71829396e8dc8d6a33a80a",
            756_476,
            "sciplex.k562",
        ),
        (
            "sciplex3_mcf7.json.gz",
            "MCF7",
            "218fe67013d6ea8fc5e9164d1060712d3552b21f38f4d866768387f532d0309a",
            1_129_278,
            "sciplex.mcf7",
        ),
    ],
    ranking="full",
    shape=(69, 25_745),
)
