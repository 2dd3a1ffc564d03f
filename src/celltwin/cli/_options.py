"""Options shared by several commands: ``--force`` and comma-separated lists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from celltwin._output import check_output

from ._errors import user_errors

__all__ = ["ForceOpt", "comma_list", "refuse_existing"]

ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace OUT if it exists (otherwise it is refused).")
]


def refuse_existing(out: Path, *, force: bool, kind: Literal["file", "folder"], what: str) -> None:
    """Refuse to replace ``out`` (exit 2, nothing written) unless ``--force``."""
    with user_errors():
        check_output(out, overwrite=force, kind=kind, what=what)


def comma_list(value: str | None) -> list[str] | None:
    """``"a, b"`` as ``["a", "b"]``; ``None`` stays ``None``."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]
