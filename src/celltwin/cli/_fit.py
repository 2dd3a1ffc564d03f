"""``celltwin fit`` and ``celltwin predict``: a split file in, a saved model and predictions out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from celltwin._keys import (
    CONTEXT,
    IN_DOMAIN,
    PERTURBATION,
    PREDICTION_SOURCE,
    SPLIT,
    TEST,
    UNS_KEY,
)

if TYPE_CHECKING:
    from anndata import AnnData

from ._errors import user_errors
from ._options import ForceOpt, comma_list, refuse_existing

__all__ = ["fit", "predict"]

DrugsOpt = Annotated[
    Path | None,
    typer.Option(
        "--drugs",
        help="Drug library, CSV of name,SMILES: fingerprints (with log-dose) of drugs, so "
        "unmeasured ones are predicted from structure.",
    ),
]


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
    gene_prior: Annotated[
        str | None,
        typer.Option(
            help="Gene features (transition): go, string, dorothea joined by '+', data, none, "
            "or auto (default: go+string when the priors are here and the targets are genes)."
        ),
    ] = None,
    drugs: DrugsOpt = None,
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
            gene_prior=gene_prior,
            drugs=drugs,
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
    skip_unpredictable: Annotated[
        bool,
        typer.Option(
            help="Predict what can be, and write the refused conditions with their reasons to "
            "OUT's stem + .refusals.csv (default: one refused condition fails the batch)."
        ),
    ] = False,
    drugs: DrugsOpt = None,
    force: ForceOpt = False,
) -> None:
    """Predict conditions (by default DATA's held-out ones) with a saved model; write OUT."""
    from celltwin.models import predict as predict_cells
    from celltwin.models import refusals_path

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
            skip_unpredictable=skip_unpredictable,
            drugs=drugs,
        )
    n_conditions = pred.obs[[CONTEXT, PERTURBATION]].drop_duplicates().shape[0]
    typer.echo(f"predicted {pred.n_obs} cells of {n_conditions} conditions")
    if summary := source_summary(pred):
        typer.echo(summary)
    if len(table := condition_table(pred)):
        typer.echo(table.to_string(index=False))
    refusals = pred.uns[UNS_KEY]["refusals"]
    if len(refusals):
        typer.echo(f"refused {len(refusals)} conditions:")
        for row in refusals.itertuples(index=False):
            hint = f" ({row.suggestion})" if row.suggestion else ""
            typer.echo(f"  {row.condition}: {row.reason}{hint}")
        typer.echo(f"wrote {refusals_path(out)}")
    typer.echo(f"wrote {out}")


def source_summary(pred: AnnData) -> str:
    """``source: measured 2, prior 1`` (conditions per source), or ``""`` without sources."""
    if PREDICTION_SOURCE not in pred.obs.columns:
        return ""
    per_condition = pred.obs.drop_duplicates([CONTEXT, PERTURBATION])[PREDICTION_SOURCE]
    counts = per_condition.astype(str).value_counts().sort_index()
    return "source: " + ", ".join(f"{name} {n}" for name, n in counts.items())


#: Conditions listed one per line by ``celltwin predict``; more are summarised by source only.
_MAX_LISTED = 30


def condition_table(pred: AnnData) -> pd.DataFrame:
    """One row per predicted condition: its source and in-domain score (empty when the model
    gives neither, or when there are more than a screenful of conditions)."""
    columns = [c for c in (PREDICTION_SOURCE, IN_DOMAIN) if c in pred.obs.columns]
    rows = pred.obs.drop_duplicates([CONTEXT, PERTURBATION])
    if not columns or len(rows) > _MAX_LISTED:
        return pd.DataFrame()
    table = rows[[CONTEXT, PERTURBATION, *columns]].astype({CONTEXT: str, PERTURBATION: str})
    if IN_DOMAIN in table.columns:
        table[IN_DOMAIN] = table[IN_DOMAIN].astype(float).round(2)
    return table.rename(columns={PREDICTION_SOURCE: "source", IN_DOMAIN: "in-domain"})
