"""Output paths: celltwin never replaces an existing file or folder unless told to.

One check for every writer (a saved model, predictions, an evaluation's folder, a prepared or
split file): :func:`check_output` refuses an existing file or a non-empty folder with a
:class:`FileExistsError` naming the path and the fix, before anything is computed or written.
The command line passes its ``--force`` flag as ``overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

__all__ = ["check_output"]


def check_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    kind: Literal["file", "folder"],
    what: str = "output",
) -> Path:
    """Raise :class:`FileExistsError` when writing ``path`` would replace something.

    Parameters
    ----------
    path
        The file or folder about to be written.
    overwrite
        Allow replacing it: the files written are replaced, nothing else is removed.
    kind
        ``"folder"``: an existing empty folder is fine, a non-empty one is refused.
        ``"file"``: any existing file is refused; a folder in its place always is.
    what
        What is written, for the message (e.g. ``"model folder"``).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.
    """
    out = Path(path)
    if kind == "file" and out.is_dir():
        raise FileExistsError(
            f"the {what} {out} is a folder, not a file. Fix: give a file path (e.g. "
            f"{out / 'out.h5ad'})."
        )
    if kind == "folder" and out.exists() and not out.is_dir():
        raise FileExistsError(f"the {what} {out} is a file, not a folder. Fix: give a folder path.")
    exists = out.is_file() if kind == "file" else out.is_dir() and any(out.iterdir())
    if exists and not overwrite:
        held = "exists" if kind == "file" else "exists and is not empty"
        raise FileExistsError(
            f"the {what} {out} {held}; nothing was written. Fix: pass overwrite=True to "
            "replace it, or choose another path."
        )
    return out
