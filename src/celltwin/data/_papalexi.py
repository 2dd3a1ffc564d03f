"""Papalexi et al. 2021 (ECCITE-seq), THP-1 CRISPR knockouts: the subset kept in shared/.

20,729 cells x 299 genes of raw UMI counts, each cell assigned to its most abundant guide
(``guide_max``) and that guide's target (``target_gene_max``: 25 genes or ``non-targeting``).

Guide assignment rule
---------------------
Cells carry ambient guide UMIs besides the guide they were infected with (a median of 5 guides
have UMIs in a cell). The dominant guide's share of the cell's guide UMIs (recomputed from
``obsm['grna_counts']``; it equals the packagers' ``guide_frac``) has a median of 0.94 and a long
tail: 966 cells (4.7%) fall below 0.5. A cell is kept when its dominant guide holds at least
``min_guide_frac`` (default 0.5) of its guide UMIs, i.e. when one guide is a majority and the
assignment is unambiguous. Every cell has at least 5 guide UMIs, so no count floor is needed.
The rule, its threshold and the numbers of cells kept and dropped are recorded in
``uns['celltwin']['guide_assignment']``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import (
    BATCH,
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    PERTURBATION,
    PERTURBATION_TYPE,
    PERTURBATION_TYPES,
    UNS_KEY,
)
from ..pp import log_normalize
from ._registry import DatasetEntry, Source, register

#: Label of control cells in the source.
SOURCE_CONTROL = "non-targeting"
#: Default minimum share of a cell's guide UMIs held by its dominant guide.
MIN_GUIDE_FRAC = 0.5
CONTEXT_LABEL = "THP-1"
#: ``perturbation_type`` of the knockout cells (one of the canonical types).
KNOCKOUT_TYPE = "crispr_ko"
assert KNOCKOUT_TYPE in PERTURBATION_TYPES


def build_papalexi2021(paths: Sequence[Path], *, min_guide_frac: float = MIN_GUIDE_FRAC) -> AnnData:
    """Canonical AnnData from ``papalexi2021_thp1_subset.h5ad``.

    Parameters
    ----------
    paths
        One path: the shared h5ad.
    min_guide_frac
        Keep cells whose dominant guide holds at least this share of their guide UMIs
        (see the module docstring). ``0`` keeps every cell.

    Returns
    -------
    AnnData
        ``obs``: ``perturbation`` (target gene, ``control`` for non-targeting guides),
        ``perturbation_type`` (``crispr_ko`` / ``control``), ``context`` (``THP-1``), ``batch``
        (biological replicate), ``guide``, ``guide_frac``, ``guide_umis``; raw counts in
        ``layers['counts']``; ``X`` log-normalised; ``obsm['grna_counts']`` guide UMIs per cell.
    """
    if not 0.0 <= min_guide_frac <= 1.0:
        raise ValueError(f"'min_guide_frac' must be in [0, 1] (got {min_guide_frac})")
    src = anndata.read_h5ad(paths[0])
    grna = src.obsm["grna_counts"]
    guide_counts = np.asarray(grna, dtype=np.float64)
    guide_umis = guide_counts.sum(axis=1)
    dominant = guide_counts.max(axis=1)
    frac = np.divide(dominant, guide_umis, out=np.zeros_like(dominant), where=guide_umis > 0)
    keep = frac >= min_guide_frac

    target = src.obs["target_gene_max"].astype(str).to_numpy()
    is_control = target == SOURCE_CONTROL
    perturbation = np.where(is_control, CONTROL, target)
    obs = pd.DataFrame(
        {
            PERTURBATION: pd.Categorical(perturbation),
            PERTURBATION_TYPE: pd.Categorical(np.where(is_control, CONTROL, KNOCKOUT_TYPE)),
            CONTEXT: pd.Categorical([CONTEXT_LABEL] * src.n_obs),
            BATCH: pd.Categorical(src.obs["bio_rep"].astype(str)),
            "guide": pd.Categorical(src.obs["guide_max"].astype(str)),
            "guide_frac": frac,
            "guide_umis": guide_umis,
        },
        index=src.obs_names.copy(),
    )
    counts = sp.csr_matrix(src.X, dtype=np.float32)
    adata = AnnData(
        X=counts.copy(),
        obs=obs,
        var=pd.DataFrame(index=src.var_names.copy()),
        obsm={"grna_counts": pd.DataFrame(grna, index=src.obs_names, copy=True)},
    )
    adata.layers[COUNTS_LAYER] = counts
    adata = adata[keep].copy()
    for col in (PERTURBATION, PERTURBATION_TYPE, CONTEXT, BATCH, "guide"):
        adata.obs[col] = adata.obs[col].cat.remove_unused_categories()
    log_normalize(adata)
    adata.uns["guide_targets"] = src.uns["grna_target"].astype(str).reset_index(drop=True)
    adata.uns.setdefault(UNS_KEY, {})["guide_assignment"] = {
        "rule": (
            "keep cells whose dominant guide holds at least min_guide_frac of the cell's guide "
            "UMIs (obsm['grna_counts'])"
        ),
        "min_guide_frac": float(min_guide_frac),
        "n_cells_before": int(src.n_obs),
        "n_cells_dropped": int((~keep).sum()),
        "n_cells_kept": int(keep.sum()),
    }
    return adata


register(
    DatasetEntry(
        name="papalexi2021_subset",
        kind="anndata",
        description=(
            "Papalexi 2021 ECCITE-seq, THP-1 CRISPR knockouts of 25 genes + non-targeting "
            "controls, 3 replicates; 299 genes (downsampled by the packagers), raw UMI counts. "
            f"Cells whose dominant guide holds < {MIN_GUIDE_FRAC} of their guide UMIs dropped."
        ),
        citation=(
            "Papalexi E. et al. Characterizing the molecular regulation of inhibitory immune "
            "checkpoints with multimodal single-cell screens. Nat Genet 53, 322-331 (2021)."
        ),
        sources=(
            Source(
                url="shared:data/papalexi2021_thp1_subset.h5ad",
                sha256="c6e29fa66da23b415475845dd6628db8ed2a123a491a3d6ae76a68225134c8e4",
                filename="papalexi2021_thp1_subset.h5ad",
                size=4_538_451,
                note="sceptredata R package, data/lowmoi_example_data.rda (MIT)",
            ),
        ),
        build=build_papalexi2021,
        shape=(19_763, 299),
        available_offline=True,
        license="MIT (sceptredata)",
    )
)
