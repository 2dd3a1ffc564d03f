"""``celltwin fit`` and ``celltwin predict``: a split file in, a saved model and predictions out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from celltwin._keys import CONTEXT, PERTURBATION, SPLIT, TEST

from ._errors import user_errors
from ._options import ForceOpt, comma_list, refuse_existing

__all__ = ["fit", "predict"]


def fit(
    data: Annotated[Path, typer.Argument(help="Cells (.h5ad), with a split (`celltwin split`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder the fitted model is saved to.")],
    model: Annotated[
        str, typer.Option(help="Registered model (see `celltwin models`).")
    ] = "transition",
    split_key: Annotated[
        str, typer.Option(help="obs column of the split: only 'train' cells are read.")
    ] = SPLIT,
    time_budget: Annotated[
        float | None, typer.Option(help="Seconds of training (transition).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same model.")] = 0,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint folder; fitting again resumes from it.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Model parameter KEY=VALUE, repeatable (n_members=3)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars with the loss.")] = True,
    force: ForceOpt = False,
) -> None:
    """Fit a model on the training cells of DATA and save it to OUT."""
    from celltwin.benchmark import parse_options
    from celltwin.models import fit as fit_model

    refuse_existing(out, force=force, kind="folder", what="model folder")
    with user_errors():
        fit_model(
            data,
            model=model,
            split_key=split_key,
            params=parse_options(param or []),
            checkpoint_dir=checkpoint_dir,
            time_budget=time_budget,
            seed=seed,
            progress=progress,
            out=out,
            overwrite=force,
        )
    typer.echo(f"wrote {out}")


def predict(
    model_dir: Annotated[Path, typer.Argument(help="Folder of a saved model (`celltwin fit`).")],
    data: Annotated[
        Path, typer.Option("--data", help="Cells (.h5ad) holding the control cells to start from.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .h5ad of predicted cells.")],
    conditions: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated context:perturbation[:dose] (default: the held-out conditions)."
        ),
    ] = None,
    split_key: Annotated[str, typer.Option(help="obs column of the split.")] = SPLIT,
    split: Annotated[str, typer.Option(help="Split label whose conditions are predicted.")] = TEST,
    n_cells: Annotated[
        int | None, typer.Option(help="Cells per condition (default: as many as in DATA).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draw of control cells.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Predict conditions (by default DATA's held-out ones) with a saved model; write OUT."""
    from celltwin.models import predict as predict_cells

    refuse_existing(out, force=force, kind="file", what="prediction file")
    with user_errors():
        pred = predict_cells(
            model_dir,
            data,
            conditions=comma_list(conditions),
            split_key=split_key,
            split=split,
            n_cells=n_cells,
            seed=seed,
            out=out,
            overwrite=force,
        )
    n_conditions = pred.obs[[CONTEXT, PERTURBATION]].drop_duplicates().shape[0]
    typer.echo(f"predicted {pred.n_obs} cells of {n_conditions} conditions")
    typer.echo(f"wrote {out}")
