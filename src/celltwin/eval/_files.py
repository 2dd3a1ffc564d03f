"""Evaluating files: read the truth, the prediction and the training cells, then evaluate."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata
import h5py
import numpy as np
from anndata import AnnData

from .._keys import TEST, UNS_KEY
from .._progress import timed
from ..io import read
from ..split import held_out_cells
from ..split import train_cells as training_part
from ._context import PRED_DE, TRUE_DE
from ._de import warm_kernels
from ._evaluate import evaluate
from ._plan import DEFAULT_METRICS
from ._registry import get_metric
from ._result import Evaluation

__all__ = ["evaluate_files"]


def evaluate_files(
    truth: str | os.PathLike[str],
    pred: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    train: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    ceiling: bool = True,
    n_repeats: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    allow_missing: bool = False,
    progress: bool = False,
    split_key: str | None = None,
    split: str = TEST,
    **read_options: Any,
) -> Evaluation:
    """Read the files (any convention :func:`celltwin.io.read` knows) and evaluate.

    Parameters
    ----------
    truth, pred, train
        ``.h5ad`` files: true cells, the prediction and (optionally) the training cells.
    split_key, split
        For a ``truth`` file that carries a split (``celltwin split``) in ``obs[split_key]``:
        score against its ``split`` cells and their contexts' controls
        (:func:`celltwin.split.held_out_cells`), and take the training cells
        (:func:`celltwin.split.train_cells`) of ``truth`` when ``train`` is not given (a
        ``train`` file is cut the same way when it has that column, else used whole).
        ``None`` (default): the files are used whole.
    out
        Output directory for the tables of :meth:`Evaluation.write` (``metrics.csv``,
        ``summary.json``, ...), written only when the evaluation succeeds; checked before
        anything is read. ``None`` (default): nothing is written. The HTML report is
        :func:`celltwin.pl.write_evaluation`'s (the tables plus ``report.html``; what
        ``celltwin evaluate`` writes).
    metrics, ceiling, n_repeats, n_boot, seed, allow_missing, progress
        As in :func:`evaluate`.
    **read_options
        Passed to :func:`celltwin.io.read` for every file (``convention=``,
        ``perturbation_key=``, ``control_label=``, ``context=``, ...).

    Returns
    -------
    Evaluation
        The result (also written to ``out`` when given).
    """
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise FileExistsError(
                f"'out' must be a directory: {out} is a file. Fix: choose a folder."
            )
    dtype = _stored_dtype(truth) if _needs_de(metrics) else None
    kernels = warm_kernels(dtype) if dtype is not None else None
    true_cells, predicted, train_cells = _read_inputs(
        truth, pred, train, split_key=split_key, split=split, read_options=read_options
    )
    if kernels is not None:
        with timed("DE kernels compiled or loaded (beyond the reading)"):
            kernels.join()
    result = evaluate(
        true_cells,
        predicted,
        train=train_cells,
        metrics=metrics,
        ceiling=ceiling,
        n_repeats=n_repeats,
        n_boot=n_boot,
        seed=seed,
        allow_missing=allow_missing,
        progress=progress,
    )
    result.params["files"] = {
        "truth": str(truth),
        "pred": str(pred),
        **({"train": str(train)} if train is not None else {}),
        **({"split_key": split_key, "split": split} if split_key is not None else {}),
    }
    if out is not None:
        result.write(out)
    return result


def _read_inputs(
    truth: str | os.PathLike[str],
    pred: str | os.PathLike[str],
    train: str | os.PathLike[str] | None,
    *,
    split_key: str | None,
    split: str,
    read_options: dict[str, Any],
) -> tuple[AnnData, AnnData, AnnData | None]:
    """True cells, the prediction and the training cells (cut by ``split_key`` when given)."""
    with timed("read truth"):
        true_cells = read(os.fspath(truth), **read_options)
    with timed("read prediction"):
        predicted = _read_prediction(pred, read_options)
    train_cells = read(os.fspath(train), **read_options) if train is not None else None
    if split_key is not None:
        if train_cells is None:
            train_cells = training_part(true_cells, key=split_key)
        elif split_key in train_cells.obs.columns:
            train_cells = training_part(train_cells, key=split_key)
        true_cells = held_out_cells(true_cells, key=split_key, split=split)
    return true_cells, predicted, train_cells


def _needs_de(metrics: Sequence[str] | None) -> bool:
    """Whether the metrics (names; ``None``: the defaults) run a DE test."""
    try:
        chosen = [get_metric(n) for n in (DEFAULT_METRICS if metrics is None else metrics)]
    except (KeyError, ValueError):
        return False  # evaluate() reports the unknown name
    return any(set(m.needs) & (TRUE_DE | PRED_DE) for m in chosen)


def _stored_dtype(path: str | os.PathLike[str]) -> np.dtype[Any] | None:
    """The float dtype of ``X`` in an ``.h5ad`` file (``None``: not one, or not a float)."""
    try:
        if Path(path).suffix != ".h5ad" or not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as handle:
            node = handle.get("X")
            if isinstance(node, h5py.Group):
                node = node.get("data")
            dtype = node.dtype if isinstance(node, h5py.Dataset) else None
    except OSError:
        return None
    return dtype if dtype is not None and dtype in (np.float32, np.float64) else None


def _read_prediction(path: str | os.PathLike[str], read_options: dict[str, Any]) -> AnnData:
    """A prediction file: celltwin's own (``celltwin predict``) as written, others via ``read``.

    celltwin's predictions are canonical already and hold only the predicted conditions (no
    control cells, which ``read`` would refuse); :func:`evaluate` then takes the truth's
    control cells as the predicted control.
    """
    ours = False
    if Path(path).suffix == ".h5ad" and h5py.is_hdf5(path):  # else `read` explains the problem
        with h5py.File(path, "r") as handle:
            ours = f"uns/{UNS_KEY}/prediction" in handle
    if ours and not read_options:
        return anndata.read_h5ad(path)
    return read(os.fspath(path), **read_options)
