"""Norman 2019 (K562 CRISPRa, pairs) and McFaline-Figueroa 2023 (glioblastoma CRISPRi): the
subsets of perturbench's development file kept in shared/.

Both come from ``devel.h5ad`` of the ``altoslabs/perturbench`` repository
(``src/perturbench/data/resources/devel.h5ad``, commit d357dfa, BSD-3), which concatenates small
subsets of several screens over one set of 500 highly variable genes (``obs['dataset']`` names
the screen). Their layout, shared by both:

- ``X`` is log1p(CP10k) (kept as it is); ``layers['counts_reconstructed']`` holds counts rebuilt
  from ``X`` and becomes ``layers['counts']``.
- ``obs['perturbation']`` is the target (pairs ``+``-joined, their genes sorted, as celltwin
  writes them: the source's ``SET+KLF1`` becomes ``KLF1+SET``) or ``control``; ``obs['dose']``
  is a placeholder (``1`` or ``1+1``) carried from the source, not a dose, so it is dropped.
- The targeted genes are *not* among the 500 measured genes: a model cannot read a target's own
  expression, and an unseen target is predicted from prior knowledge only.

The Norman build also carries the paper's genetic-interaction fits of 127 gene pairs
(``uns['gi_labels']``, from ``norman2019_gi_labels.csv``): the regression of each pair's effect
on its two singles' effects (``ts_coef_first``, ``ts_coef_second``, ``ts_norm``, ``dcor``, ...)
and, for 88 pairs, the class GEARS assigns (``gears_gi_class``); ``key`` is the pair's sorted
genes joined by ``_``.
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
    CONTEXT,
    CONTROL,
    COUNTS_LAYER,
    CRISPRA,
    CRISPRI,
    PERTURBATION,
    PERTURBATION_TYPE,
    join_combination,
    split_label,
)
from ._registry import DatasetEntry, Source, register

PERTURBENCH = (
    "altoslabs/perturbench, src/perturbench/data/resources/devel.h5ad (commit d357dfa, BSD-3)"
)
#: uns key of the Norman pairs' genetic-interaction fits.
GI_LABELS_KEY = "gi_labels"


def _canonical(src: AnnData, *, dataset: str, kind: str, context: str | None) -> AnnData:
    """Canonical AnnData of one screen of perturbench's development file."""
    if "dataset" in src.obs.columns:
        src = src[src.obs["dataset"].astype(str).to_numpy() == dataset]
    # Canonical labels: a pair's genes sorted (the source writes SET+KLF1).
    perturbation = np.array(
        [join_combination(split_label(p)) for p in src.obs["perturbation"].astype(str)],
        dtype=object,
    )
    is_control = perturbation == CONTROL
    contexts = (
        np.full(src.n_obs, context, dtype=object)
        if context is not None
        else src.obs["cell_type"].astype(str).to_numpy()
    )
    obs = pd.DataFrame(
        {
            PERTURBATION: pd.Categorical(perturbation),
            PERTURBATION_TYPE: pd.Categorical(np.where(is_control, CONTROL, kind)),
            CONTEXT: pd.Categorical(contexts),
            "n_counts": src.obs["ncounts"].to_numpy(dtype=np.float64),
        },
        index=src.obs_names.copy(),
    )
    adata = AnnData(
        X=sp.csr_matrix(src.X, dtype=np.float32),
        obs=obs,
        var=pd.DataFrame(index=src.var_names.astype(str).copy()),
    )
    adata.layers[COUNTS_LAYER] = sp.csr_matrix(src.layers["counts_reconstructed"], dtype=np.float32)
    adata.uns["log1p"] = {"base": None}
    return adata


def read_gi_labels(path: str | Path) -> pd.DataFrame:
    """The Norman 2019 interaction fits as a table indexed by ``key`` (sorted genes, ``_``-joined).

    Text columns get ``""`` for missing values (so the table can be written to h5ad).
    """
    table = pd.read_csv(path)
    for col in table.columns:
        if table[col].dtype == object:
            table[col] = table[col].fillna("").astype(str)
    return table.set_index("key", drop=False).rename_axis(None)


def build_norman2019(paths: Sequence[Path]) -> AnnData:
    """Canonical AnnData from ``norman2019_k562_subset.h5ad`` and ``norman2019_gi_labels.csv``.

    Returns
    -------
    AnnData
        3,375 cells x 500 genes; ``perturbation`` (``A`` or ``A+B``), ``perturbation_type``
        (``crispra``), ``context`` (``K562``); ``X`` log1p(CP10k), ``layers['counts']``;
        ``uns['gi_labels']`` the paper's interaction fits (see the module docstring).
    """
    adata = _canonical(
        anndata.read_h5ad(paths[0]), dataset="norman19", kind=CRISPRA, context="K562"
    )
    if len(paths) > 1:
        adata.uns[GI_LABELS_KEY] = read_gi_labels(paths[1])
    return adata


def build_mcfaline2023(paths: Sequence[Path]) -> AnnData:
    """Canonical AnnData from ``mcfaline2023_gbm_subset.h5ad``.

    Returns
    -------
    AnnData
        2,586 cells x 500 genes; ``perturbation`` (9 knockdowns or ``control``),
        ``perturbation_type`` (``crispri``), ``context`` (A172, T98G, U87MG); ``X``
        log1p(CP10k), ``layers['counts']``.
    """
    return _canonical(anndata.read_h5ad(paths[0]), dataset="mcfaline23", kind=CRISPRI, context=None)


register(
    DatasetEntry(
        name="norman2019_subset",
        kind="anndata",
        description=(
            "Norman 2019 K562 CRISPRa Perturb-seq subset: control, 18 single and 15 paired "
            "activations (5 pairs with both singles measured), 500 HVGs, X log1p(CP10k); the "
            "targets are not among the genes. With the paper's interaction fits of 127 pairs."
        ),
        citation=(
            "Norman TM. et al. Exploring genetic interaction manifolds constructed from rich "
            "single-cell phenotypes. Science 365, 786-793 (2019)."
        ),
        sources=(
            Source(
                url="shared:data/norman2019/norman2019_k562_subset.h5ad",
                sha256="833a3a9d593a5ec3b3306e8972b33cb664ca4ea3ad7440697e18c193d0dcf064",
                filename="norman2019_k562_subset.h5ad",
                size=631_002,
                note=f"obs['dataset'] == 'norman19' of {PERTURBENCH}",
            ),
            Source(
                url="shared:data/norman2019/norman2019_gi_labels.csv",
                sha256="ff9e5bbedcfd469577eddb2c7b9c36d320d828418160dbbcf23d98a86db9bc8e",
                filename="norman2019_gi_labels.csv",
                size=129_111,
                note=(
                    "thomasmaxwellnorman/Perturbseq_GI data_sharing/regr_fits_final.csv "
                    "(interaction fits) and yhr91/GEARS_misc gears/inference.py (classes)"
                ),
            ),
        ),
        build=build_norman2019,
        # 2: pairs canonical (genes sorted).
        version="2",
        shape=(3_375, 500),
        available_offline=True,
        license="BSD-3 (perturbench); fits: data from the paper",
    )
)

register(
    DatasetEntry(
        name="mcfaline2023_subset",
        kind="anndata",
        description=(
            "McFaline-Figueroa 2023 CRISPRi in three glioblastoma lines (A172, T98G, U87MG): "
            "control + 9 knockdowns in every line, 500 HVGs, X log1p(CP10k); the targets are "
            "not among the genes."
        ),
        citation=(
            "McFaline-Figueroa JL. et al. Multiplex single-cell chemical genomics reveals the "
            "kinase dependence of the response to targeted therapy. Cell Genomics 4, 100487 "
            "(2024)."
        ),
        sources=(
            Source(
                url="shared:data/mcfaline2023_gbm_subset.h5ad",
                sha256="bea738a5236b9290ee673baa4305258c81b19cd36909bc404370c77fff7bffa0",
                filename="mcfaline2023_gbm_subset.h5ad",
                size=1_034_678,
                note=f"obs['dataset'] == 'mcfaline23' of {PERTURBENCH}",
            ),
        ),
        build=build_mcfaline2023,
        shape=(2_586, 500),
        available_offline=True,
        license="BSD-3 (perturbench)",
    )
)
