"""``celltwin pseudobulk`` and ``celltwin de``: on-disk cells in, in bounded memory, here or on Dask."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._errors import user_errors
from ._options import ForceOpt, comma_list, refuse_existing

__all__ = ["de", "pseudobulk"]

SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        help="Run on Dask: 'local' (a cluster on this machine) or a scheduler address such as "
        "tcp://host:8786 (`dask scheduler` prints it). Needs pip install 'celltwin[dask]'. "
        r"\[default: this process, no Dask]",
        show_default=False,
    ),
]
ByOpt = Annotated[
    str | None,
    typer.Option(
        help=r"Comma-separated obs columns of a group. \[default: context,perturbation(,dose)]",
        show_default=False,
    ),
]
DataArg = Annotated[
    Path, typer.Argument(help="Cells: an .h5ad file or a .zarr store (read lazily, never whole).")
]
LayerOpt = Annotated[
    str | None, typer.Option(help=r"Layer to read. \[default: X]", show_default=False)
]


def pseudobulk(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .h5ad, one row per group.")],
    by: ByOpt = None,
    layer: LayerOpt = None,
    match_batch: Annotated[bool, typer.Option(help="Match controls within batches too.")] = False,
    chunk_size: Annotated[int, typer.Option(help="Rows read at a time.")] = 20_000,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
) -> None:
    """Mean, variance and delta vs matched controls per group, streamed from disk."""
    from celltwin.pp import pseudobulk as run

    refuse_existing(out, force=force, kind="file", what="output file")
    with user_errors():
        pb = run(
            data,
            by=comma_list(by),
            layer=layer,
            match_batch=match_batch,
            chunk_size=chunk_size,
            scheduler=scheduler,
        )
        pb.write_h5ad(out)
    typer.echo(f"{pb.n_obs} groups x {pb.n_vars} genes; wrote {out}")


def de(
    data: DataArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output .csv: one row per (pool, group, gene).")
    ],
    method: Annotated[str, typer.Option(help="wilcoxon (rank-sum) or welch (t-test).")] = (
        "wilcoxon"
    ),
    by: ByOpt = None,
    layer: LayerOpt = None,
    max_cells: Annotated[int, typer.Option(help="Cells read and tested at once.")] = 200_000,
    chunk_size: Annotated[int, typer.Option(help="Rows read at a time.")] = 20_000,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
) -> None:
    """Test every group against its matched control cells, in bounded memory."""
    import pandas as pd

    from celltwin.eval import differential_expression
    from celltwin.pp import read_var

    refuse_existing(out, force=force, kind="file", what="output file")
    with user_errors():
        results = differential_expression(
            data,
            method=method,  # type: ignore[arg-type]
            by=comma_list(by),
            layer=layer,
            max_cells=max_cells,
            chunk_size=chunk_size,
            scheduler=scheduler,
        )
        genes = read_var(data).index.to_numpy()
        table = pd.concat(
            [r.to_frame(genes).assign(pool=name) for name, r in results.items()], ignore_index=True
        )
        table.insert(0, "pool", table.pop("pool"))
        table.to_csv(out, index=False)
    n_groups = sum(r.groups.size for r in results.values())
    typer.echo(f"{n_groups} groups in {len(results)} pools ({method}); wrote {out}")
