"""Predictions in the layout cell-eval 0.8.x and the Virtual Cell Challenge accept.

cell-eval (``cell-eval run``, ``MetricsEvaluator``) requires of a prediction: obs column
``target_gene`` with control cells labelled ``non-targeting`` (its defaults), real control cells in
the file (DE of the prediction is tested against them), exactly the truth's perturbations, the
same genes in the same order as the truth (``var_names``), and log1p-normalised values in X (an
all-integer X is taken for counts and re-normalised; values of 15 or more are refused).
``cell-eval prep`` (which packs a ``.vcc`` submission) additionally checks the genes against the
challenge's gene list (18,080 genes, in its order), at most 200,000 cells, and writes float32 CSR.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, GENE_ID, PERTURBATION, UNS_KEY
from ..io import Problem, ValidationError, matrix_stats

__all__ = ["VCC_CONTEXT_KEY", "VCC_CONTROL", "VCC_PERTURBATION_KEY", "to_vcc", "write_vcc"]

#: cell-eval's default perturbation column and control label (``--pert-col``, ``--control-pert``).
VCC_PERTURBATION_KEY = "target_gene"
VCC_CONTROL = "non-targeting"
#: Context column written (``cell-eval run --celltype-col cell_type`` splits results by it).
VCC_CONTEXT_KEY = "cell_type"
#: cell-eval refuses log1p values at or above this (``guess_is_lognorm``).
_CELL_EVAL_MAX = 15.0


def _aligned(adata: AnnData, genes: pd.Index, role: str) -> AnnData:
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()].unique().tolist()[:5]
        raise ValidationError(
            [
                Problem(
                    "duplicate_genes",
                    f"{role} has duplicated gene names",
                    f"{role}.var_names: {dup}",
                    f"make them unique ({role}.var_names_make_unique())",
                )
            ]
        )
    positions = adata.var_names.get_indexer(genes)
    missing = genes[positions < 0].tolist()
    if missing:
        raise ValidationError(
            [
                Problem(
                    "missing_genes",
                    f"{role} lacks {len(missing)} of the {len(genes)} required genes",
                    f"{role}.var_names: {missing[:8]}",
                    "predict every gene of the gene list (cell-eval needs the truth's genes in "
                    "the truth's order)",
                )
            ]
        )
    if np.array_equal(positions, np.arange(adata.n_vars)):
        return adata
    return adata[:, positions]


def _check_values(X: sp.csr_matrix, role: str) -> None:
    stats = matrix_stats(X)
    problems = []
    if stats.kind == "non_finite":
        problems.append(
            Problem(
                "non_finite",
                f"{role}.X holds {stats.n_non_finite} NaN or infinite value(s)",
                f"{role}.X",
                "replace them before exporting; cell-eval cannot score them",
            )
        )
    elif stats.kind == "counts":
        problems.append(
            Problem(
                "counts",
                f"{role}.X holds whole numbers only; cell-eval would take them for counts and "
                "re-normalise them",
                f"{role}.X",
                "export log1p(CP10k) values (celltwin.pp.log_normalize)",
            )
        )
    elif stats.max >= _CELL_EVAL_MAX or stats.n_negative:
        problems.append(
            Problem(
                "not_log1p",
                f"{role}.X ranges from {stats.min:g} to {stats.max:g}; cell-eval accepts "
                f"log1p values in [0, {_CELL_EVAL_MAX:g})",
                f"{role}.X",
                "export log1p(CP10k) values, clipped at 0",
            )
        )
    if problems:
        raise ValidationError(problems)


def to_vcc(
    pred: AnnData,
    *,
    control: AnnData | None = None,
    genes: Sequence[str] | None = None,
) -> AnnData:
    """Return ``pred`` laid out as cell-eval / the Virtual Cell Challenge expect.

    Parameters
    ----------
    pred
        Canonical cells (predicted or real): obs ``perturbation`` (``context`` optional),
        log1p(CP10k) in X. A pseudobulk prediction is refused: cell-eval scores cells.
    control
        Canonical data whose control cells (real ones, e.g. the truth's or the training
        data's) are put in the file, replacing any control cells of ``pred``. Without it,
        ``pred`` must hold control cells itself.
    genes
        Gene names in the required order (e.g. the challenge's gene list, or the truth's
        ``var_names``): X is reordered to it; genes not in it are dropped; a missing one is an
        error. Default: ``pred``'s genes and order.

    Returns
    -------
    AnnData
        obs ``target_gene`` (controls ``non-targeting``) and, when ``pred`` has it, ``cell_type``
        from ``context``; var_names the genes (``gene_id`` kept when present); X float32 CSR;
        predicted cells first, then the control cells. ``uns['celltwin']['export']`` records
        where the controls came from.

    Examples
    --------
    >>> vcc = to_vcc(prediction, control=truth, genes=truth.var_names)  # doctest: +SKIP
    >>> vcc.write_h5ad("pred.h5ad")  # then: cell-eval prep -i pred.h5ad -g genes.csv
    """
    _check_inputs(pred, control)
    order = pd.Index(genes if genes is not None else pred.var_names).astype(str)
    if not order.is_unique:
        raise ValueError("'genes' has duplicated names; pass each gene once")
    parts, source = _parts(pred, control, order)
    blocks = [sp.csr_matrix(p.X, dtype=np.float32) for p in parts]
    X = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
    X.sort_indices()
    _check_values(X, "pred")
    obs_parts = [p.obs for p in parts]
    perturbation = np.concatenate([o[PERTURBATION].astype(str).to_numpy() for o in obs_parts])
    obs = pd.DataFrame(
        {VCC_PERTURBATION_KEY: np.where(perturbation == CONTROL, VCC_CONTROL, perturbation)},
        index=pd.Index([f"cell{i}" for i in range(perturbation.size)]),
    )
    if all(CONTEXT in o.columns for o in obs_parts):
        obs[VCC_CONTEXT_KEY] = np.concatenate(
            [o[CONTEXT].astype(str).to_numpy() for o in obs_parts]
        )
    var = pd.DataFrame(index=order.copy())
    if GENE_ID in pred.var.columns:
        var[GENE_ID] = pred.var[GENE_ID].reindex(order).astype(str).to_numpy()
    return AnnData(
        X=X,
        obs=obs,
        var=var,
        uns={UNS_KEY: {"export": {"format": "vcc", "control_cells_from": source}}},
    )


def _check_inputs(pred: AnnData, control: AnnData | None) -> None:
    """Refuse what cell-eval cannot score: non-AnnData, pseudobulk, non-canonical obs."""
    if not isinstance(pred, AnnData):
        raise TypeError(f"'pred' must be an AnnData (got {type(pred).__name__})")
    info = pred.uns.get(UNS_KEY, {}).get("prediction", {})
    if isinstance(info, dict) and info.get("kind") == "pseudobulk":
        raise ValueError(
            "to_vcc: the prediction holds pseudobulk profiles; cell-eval scores cells. Fix: "
            "predict cells (a 'cells' model), e.g. n copies of each profile"
        )
    for obj, role in ((pred, "pred"), (control, "control")):
        if obj is not None and PERTURBATION not in obj.obs.columns:
            raise ValidationError(
                [
                    Problem(
                        "not_canonical",
                        f"{role} lacks obs column {PERTURBATION!r}",
                        f"{role}.obs",
                        f"make it canonical with celltwin.io.to_canonical({role})",
                    )
                ]
            )


def _parts(pred: AnnData, control: AnnData | None, order: pd.Index) -> tuple[list[AnnData], str]:
    """The predicted cells, then the control cells (``control``'s, else ``pred``'s), aligned to
    ``order``; and where the controls came from."""
    labels = pred.obs[PERTURBATION].astype(str).to_numpy()
    if control is not None:
        keep = np.flatnonzero(labels != CONTROL)
        real = control[control.obs[PERTURBATION].astype(str).to_numpy() == CONTROL]
        if real.n_obs == 0:
            raise ValidationError(
                [
                    Problem(
                        "no_controls",
                        "'control' holds no control cells",
                        f"control.obs[{PERTURBATION!r}] == {CONTROL!r}",
                        "pass data with real control cells (the truth or the training cells)",
                    )
                ]
            )
        return [_aligned(pred[keep], order, "pred"), _aligned(real, order, "control")], "control"
    if not (labels == CONTROL).any():
        raise ValidationError(
            [
                Problem(
                    "no_controls",
                    "the prediction holds no control cells; cell-eval tests the "
                    "prediction's DE against control cells in the same file",
                    f"pred.obs[{PERTURBATION!r}] == {CONTROL!r}",
                    "pass control=<the truth or training cells> to add real control cells",
                )
            ]
        )
    order_rows = np.append(np.flatnonzero(labels != CONTROL), np.flatnonzero(labels == CONTROL))
    return [_aligned(pred[order_rows], order, "pred")], "pred"


def write_vcc(
    pred: AnnData,
    path: str | os.PathLike[str],
    *,
    control: AnnData | None = None,
    genes: Sequence[str] | None = None,
) -> Path:
    """Write :func:`to_vcc` of ``pred`` to ``path`` (``.h5ad``).

    The file is what ``cell-eval run -ap`` reads and what ``cell-eval prep -i`` packs into a
    ``.vcc`` submission (pass the challenge's gene list as ``genes`` so the order matches).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.suffix != ".h5ad":
        raise ValueError(f"write_vcc writes .h5ad files; got {path.name!r}. Fix: end it in .h5ad")
    to_vcc(pred, control=control, genes=genes).write_h5ad(path)
    return path
