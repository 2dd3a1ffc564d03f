"""The two sides of a split: the cells a model may train on, and the held-out truth.

A prediction of held-out conditions is scored against their real cells *and* the control cells
of the same contexts (every metric measures change against control). Control cells are labelled
``train`` by every strategy (see :mod:`celltwin.split`), so the truth of a split is the held-out
cells plus the controls of the contexts they belong to; the benchmark cuts its folds the same way
(:func:`held_out_mask`).
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from .._keys import CONTEXT, SPLIT, TEST, TRAIN, VAL
from ._core import control_mask, obs_strings, read_labels


def held_out_mask(adata: AnnData, *, key: str = SPLIT, split: str = TEST) -> np.ndarray:
    """Cells labelled ``split`` in ``obs[key]`` and the control cells of their contexts.

    Raises
    ------
    ValueError
        Without the split column, for a ``split`` that is not a split label, or when no cell
        carries it.
    """
    if split not in (VAL, TEST):
        hint = " (the cells a model learns from are train_cells())" if split == TRAIN else ""
        raise ValueError(f"split={split!r} is not a held-out label: use {VAL!r} or {TEST!r}{hint}")
    labels = read_labels(adata, key)
    chosen = labels == split
    if not chosen.any():
        found = sorted(set(labels.tolist()))
        raise ValueError(
            f"no cell has obs[{key!r}] == {split!r} (labels present: {found}): nothing is held "
            "out under this split; pass the label the split used (split=, --split) or split again"
        )
    contexts = obs_strings(adata, CONTEXT) if CONTEXT in adata.obs.columns else None
    if contexts is None:
        return chosen | control_mask(adata)
    return chosen | (control_mask(adata) & np.isin(contexts, np.unique(contexts[chosen])))


def held_out_cells(adata: AnnData, *, key: str = SPLIT, split: str = TEST) -> AnnData:
    """The truth of a split's held-out conditions: their cells and their contexts' controls.

    Parameters
    ----------
    adata
        Canonical cells with a split in ``obs[key]`` (any ``celltwin.split`` strategy).
    key
        obs column of the split.
    split
        The held-out label scored: ``"test"`` (default) or ``"val"``.

    Returns
    -------
    AnnData
        A copy of those cells, ready for :func:`celltwin.eval.evaluate` as ``truth``.
    """
    return adata[held_out_mask(adata, key=key, split=split)].copy()


def train_cells(adata: AnnData, *, key: str = SPLIT) -> AnnData:
    """The cells a model of this split may learn from (``obs[key] == "train"``), as a copy.

    This is what ``fit`` reads and what :func:`celltwin.eval.evaluate` takes as ``train`` (the
    mean baseline, the Systema reference and the VCC score).
    """
    labels = read_labels(adata, key)
    return adata[labels == TRAIN].copy()
