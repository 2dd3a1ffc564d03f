"""The listing commands: ``celltwin data list|fetch``, ``celltwin models`` and the suites of
``celltwin benchmark --list``; tables fit a 100-column terminal (see :mod:`._tables`)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from ._errors import user_errors
from ._tables import TableFormat, render_table, terminal_width

__all__ = ["data_app", "models_command", "suites_table"]

data_app = typer.Typer(
    help="Datasets: list the registry, fetch canonical data.", no_args_is_help=True
)

WideOpt = Annotated[
    bool, typer.Option("--wide", help="Every column, unshortened (may exceed the terminal).")
]
FormatOpt = Annotated[
    TableFormat, typer.Option("--format", help="table (for reading) or csv (for scripts).")
]


@data_app.command("list")
def data_list(wide: WideOpt = False, fmt: FormatOpt = TableFormat.table) -> None:
    """List the registered datasets: size, whether they work offline and are on this machine."""
    from celltwin.data import list_datasets

    table = list_datasets()
    columns = ["name", "shape", "offline", "ready", "description"]
    typer.echo(render_table(table, columns=columns, wrap="description", fmt=fmt, wide=wide))


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (see `celltwin data list`).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output .h5ad (or signatures) path; optional for priors."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Download cache directory (default: CELLTWIN_CACHE or ~/.cache)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Download and rebuild even if OUT exists.")] = False,
) -> None:
    """Download (or take from the shared folder) a dataset and write it in canonical form.

    Priors (go, string, dorothea, progeny, gene sets) are files used as they are: without --out
    the command prints where the file is (shared folder, or the download cache it was fetched
    into).
    """
    from celltwin.data import fetch

    with user_errors():
        path = fetch(name, out=out, cache_dir=cache_dir, force=force)
    typer.echo(f"wrote {path}" if out is not None else f"{name}: {path}")


def models_command(wide: WideOpt = False, fmt: FormatOpt = TableFormat.table) -> None:
    """List the registered models: what they predict and the unseen conditions they handle.

    Cell, pseudobulk and signature models, with the pip extra each needs (and whether it is
    installed); --wide adds the suites, classes and references.
    """
    from celltwin.benchmark import list_models

    table = list_models()
    table["installed"] = table["installed"].map({True: "yes", False: "no"})
    table["extra"] = table["extra"].replace("", "-")
    if not wide and fmt == TableFormat.table:
        table["unseen"] = table["handles_unseen"].map(_abbreviate)
        table["needs"] = [
            "-" if e == "-" else f"{e} ({i})"
            for e, i in zip(table["extra"], table["installed"], strict=True)
        ]
    columns = ["name", "predicts", "unseen", "needs", "description"]
    typer.echo(render_table(table, columns=columns, wrap="description", fmt=fmt, wide=wide))


_SHORT = {"combination": "comb", "context": "ctx", "perturbation": "pert"}


def _abbreviate(unseen: str) -> str:
    """``combination,context`` as ``comb,ctx`` (the narrow table's words)."""
    return ",".join(_SHORT.get(u, u) for u in unseen.split(",") if u) or "-"


def _folds(options: dict[str, object]) -> str:
    n_folds = options.get("n_folds")
    return str(n_folds) if isinstance(n_folds, int) else "by data"


def suites_table() -> pd.DataFrame:
    """One row per benchmark suite: name, data, folds, default models and description."""
    from celltwin.benchmark import suites

    rows = [
        {
            "name": s.name,
            "data": s.data or "your files",
            "folds": _folds(dict(s.options)),
            "models": ",".join(s.models),
            "description": s.description,
        }
        for s in suites()
    ]
    return pd.DataFrame(rows, columns=["name", "data", "folds", "models", "description"])


def list_suites(*, wide: bool, fmt: TableFormat) -> str:
    """The text of ``celltwin benchmark --list``."""
    table = suites_table()
    columns = ["name", "data", "folds", "description"]
    if wide or fmt == TableFormat.csv:
        return render_table(table, columns=columns, wrap="description", fmt=fmt, wide=wide)
    lines = [render_table(table, columns=columns, wrap="description"), "", "default models:"]
    for name, models in zip(table["name"], table["models"], strict=True):
        text = f"{name}: {models.replace(',', ', ')}"
        lines += textwrap.wrap(
            text, terminal_width(), initial_indent="  ", subsequent_indent="    "
        )
    return "\n".join(lines)
