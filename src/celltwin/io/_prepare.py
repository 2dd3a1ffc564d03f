"""Read any supported convention, validate, and write canonical data: one step, one function."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._keys import UNS_KEY
from ._read import read, write
from ._validate import validate


def prepare(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    output_convention: str = "celltwin",
    require_counts: bool = False,
    **read_options: Any,
) -> Path:
    """Read ``path`` (any convention), validate it, and write it to ``out``.

    Parameters
    ----------
    path
        Input ``.h5ad``.
    out
        Output ``.h5ad``; written only when the data is valid.
    output_convention
        Layout of the output: ``celltwin`` (canonical) or another registered convention.
    require_counts
        Fail unless raw integer counts are available (``layers['counts']``).
    **read_options
        Options of :func:`celltwin.io.read` (``convention``, ``perturbation_key``, ...).

    Returns
    -------
    Path
        ``out``.
    """
    adata = read(path, **read_options)
    validate(adata, require_counts=require_counts)
    adata.uns.setdefault(UNS_KEY, {})["prepared_from"] = str(Path(path).name)
    return write(adata, out, convention=output_convention)
