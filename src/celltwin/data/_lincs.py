"""LINCS L1000 plate LJP005 (A375, 24 h): kinase inhibitors at six doses, one well each.

Values are level-4 robust z-scores of the 978 landmark genes against the plate, not
log-expression: each well is already a signature. The build keeps the treated and DMSO wells
(positive controls dropped) with canonical labels: ``context`` ``A375``, ``perturbation`` the
compound name (``control`` for DMSO), ``dose`` in micromolar, ``perturbation_type`` ``drug``;
``pert_id`` (the Broad id) and ``pert_dose_um`` (the dose as a number) are kept, and
``var_names`` are the gene symbols.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, DOSE, DRUG, PERTURBATION, PERTURBATION_TYPE
from ._registry import DatasetEntry, Source, register

#: Registry name of the plate.
LINCS_DOSES = "lincs_ljp005_a375"
#: ``pert_type`` of the source's treated and vehicle wells.
TREATED, VEHICLE = "trt_cp", "ctl_vehicle"


def build_lincs_doses(paths: Sequence[Path]) -> AnnData:
    """The canonical plate from the shared file (see the module docstring)."""
    raw = anndata.read_h5ad(paths[0])
    obs = raw.obs
    kind = obs["pert_type"].astype(str).to_numpy()
    keep = np.isin(kind, (TREATED, VEHICLE))
    obs = obs.loc[keep]
    is_control = obs["pert_type"].astype(str).to_numpy() == VEHICLE
    dose = obs["pert_dose_um"].to_numpy(dtype=np.float64)
    out = pd.DataFrame(
        {
            CONTEXT: "A375",
            PERTURBATION: np.where(is_control, CONTROL, obs["pert_iname"].astype(str)),
            DOSE: np.where(is_control, "", [f"{d:g}" for d in dose]),
            PERTURBATION_TYPE: np.where(is_control, CONTROL, DRUG),
            "pert_id": obs["pert_id"].astype(str).to_numpy(),
            "pert_dose_um": np.where(is_control, 0.0, dose),
        },
        index=obs.index.astype(str),
    )
    symbols = raw.var["pr_gene_symbol"].astype(str)
    var = pd.DataFrame({"probe": raw.var_names.astype(str)}, index=pd.Index(symbols))
    var_names_unique = ~var.index.duplicated()
    x = np.asarray(raw.X, dtype=np.float32)[np.flatnonzero(keep)][:, var_names_unique]
    return AnnData(X=x, obs=out, var=var.loc[var_names_unique])


register(
    DatasetEntry(
        name=LINCS_DOSES,
        kind="anndata",
        description=(
            "LINCS L1000 plate LJP005, A375 melanoma, 24 h: 55 kinase inhibitors at 6 doses "
            "(0.04-10 uM, one well each) and 26 DMSO wells over 978 landmark genes. Level-4 "
            "robust z-scores against the plate (NOT log-expression: each well is a signature)."
        ),
        citation=(
            "Subramanian A. et al. A next generation connectivity map: L1000 platform and the "
            "first 1,000,000 profiles. Cell 171, 1437-1452 (2017); plate from cmap/cmapPy."
        ),
        sources=(
            Source(
                url="shared:data/lincs/lincs_ljp005_a375_doses.h5ad",
                sha256="12fcb3022b265d46a0f17a950f2fe64c48e72fd603e998a89780f177ee5664da",
                filename="lincs_ljp005_a375_doses.h5ad",
                size=1_857_570,
                note=(
                    "cmap/cmapPy cmapPy/pandasGEXpress/tests/functional_tests/test_l1000.gctx "
                    "(https://github.com/cmap/cmapPy, BSD-3), converted to h5ad with "
                    "pert_dose_um added"
                ),
            ),
        ),
        build=build_lincs_doses,
        shape=(354, 978),
        available_offline=True,
        license="BSD-3 (cmapPy)",
        extra={
            "values": "robust z-scores (level 4)",
            "upstream": "https://github.com/cmap/cmapPy/raw/master/cmapPy/pandasGEXpress/tests/"
            "functional_tests/test_l1000.gctx",
        },
    )
)
