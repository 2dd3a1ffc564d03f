"""The ``celltwin`` command line.

No logic lives here: each command parses its options, calls one public function and prints what
it returns. Errors that celltwin raises for bad input (``ValueError``, ``KeyError``,
``FileNotFoundError``) are printed as one clear message with exit code 2, not as a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from celltwin._keys import CONTEXT, PERTURBATION, SPLIT, TEST

app = typer.Typer(
    help="celltwin: learn, predict and honestly evaluate perturbation responses of cells.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(
    help="Datasets: list the registry, fetch canonical data.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

_USER_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn celltwin's input errors into a message and exit code 2."""
    try:
        yield
    except _USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what celltwin does.")
    ] = False,
) -> None:
    # celltwin's own INFO lines (which convention was read, what was fetched) are worth seeing
    # without decoration; other libraries' only with --verbose.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("celltwin")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


@app.command()
def version() -> None:
    """Print the installed celltwin version."""
    from celltwin._version import __version__

    typer.echo(__version__)


# --- data ------------------------------------------------------------------------------------


@data_app.command("list")
def data_list() -> None:
    """List the registered datasets, their sources and whether they work offline."""
    import pandas as pd

    from celltwin.data import list_datasets

    table = list_datasets()
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        typer.echo(
            table.drop(columns=[c for c in ("sources",) if c in table]).to_string(index=False)
        )


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (see `celltwin data list`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .h5ad (or signatures) path.")],
    cache_dir: Annotated[Path | None, typer.Option(help="Download cache directory.")] = None,
    force: Annotated[bool, typer.Option(help="Download and rebuild even if OUT exists.")] = False,
) -> None:
    """Download (or take from the shared folder) a dataset and write it in canonical form."""
    from celltwin.data import fetch

    with _user_errors():
        path = fetch(name, out=out, cache_dir=cache_dir, force=force)
    typer.echo(f"wrote {path}")


# --- files -----------------------------------------------------------------------------------

ReadOpt = Annotated[str | None, typer.Option()]


def _read_options(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help=".h5ad file or signature file/folder.")],
    top: Annotated[int, typer.Option(help="How many of the largest perturbations to list.")] = 10,
) -> None:
    """Describe what a file holds in celltwin's terms (convention, conditions, controls, problems)."""
    from celltwin.io import info as info_text

    with _user_errors():
        typer.echo(info_text(path, top=top))


@app.command()
def prepare(
    path: Annotated[Path, typer.Argument(help="Input .h5ad in any convention celltwin reads.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output canonical .h5ad.")],
    convention: Annotated[str, typer.Option(help="Input convention, or 'auto'.")] = "auto",
    perturbation_key: ReadOpt = None,
    control_label: ReadOpt = None,
    context_key: ReadOpt = None,
    context: ReadOpt = None,
    perturbation_type: ReadOpt = None,
    batch_key: ReadOpt = None,
    dose_key: ReadOpt = None,
    time_key: ReadOpt = None,
    gene_symbol_key: ReadOpt = None,
    output_convention: Annotated[
        str, typer.Option(help="Layout to write: celltwin, vcc, gears, scperturb, scgen.")
    ] = "celltwin",
) -> None:
    """Read any supported convention, validate, normalise, and write canonical (or another) layout."""
    from celltwin.io import prepare as prepare_file

    with _user_errors():
        written = prepare_file(
            path,
            out=out,
            output_convention=output_convention,
            convention=convention,
            **_read_options(
                perturbation_key=perturbation_key,
                control_label=control_label,
                context_key=context_key,
                context=context,
                perturbation_type=perturbation_type,
                batch_key=batch_key,
                dose_key=dose_key,
                time_key=time_key,
                gene_symbol_key=gene_symbol_key,
            ),
        )
    typer.echo(f"wrote {written}")


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def split(
    path: Annotated[Path, typer.Argument(help="Canonical .h5ad (see `celltwin prepare`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .h5ad with the split stored.")],
    strategy: Annotated[
        str, typer.Option(help="perturbations, contexts, combinations, drugs or doses.")
    ] = "perturbations",
    test: Annotated[str | None, typer.Option(help="Comma-separated held-out names.")] = None,
    val: Annotated[str | None, typer.Option(help="Comma-separated validation names.")] = None,
    test_fraction: Annotated[float | None, typer.Option()] = None,
    val_fraction: Annotated[float | None, typer.Option()] = None,
    few_shot: Annotated[
        int | None, typer.Option(help="contexts: perturbations kept as examples.")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    key: Annotated[str, typer.Option(help="obs column the split is written to.")] = "split",
) -> None:
    """Write a deterministic, leakage-checked train/val/test split into the file's obs and uns."""
    from celltwin.split import split_file

    with _user_errors():
        written = split_file(
            path,
            out=out,
            strategy=strategy,
            seed=seed,
            key_added=key,
            **_read_options(
                test=_list(test),
                val=_list(val),
                test_fraction=test_fraction,
                val_fraction=val_fraction,
                few_shot=few_shot,
            ),
        )
    typer.echo(f"wrote {written}")


# --- fit and predict -------------------------------------------------------------------------


@app.command()
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
) -> None:
    """Fit a model on the training cells of DATA and save it to OUT."""
    from celltwin.benchmark import parse_options
    from celltwin.models import fit as fit_model

    with _user_errors():
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
        )
    typer.echo(f"wrote {out}")


@app.command()
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
) -> None:
    """Predict conditions (by default DATA's held-out ones) with a saved model; write OUT."""
    from celltwin.models import predict as predict_cells

    with _user_errors():
        pred = predict_cells(
            model_dir,
            data,
            conditions=_list(conditions),
            split_key=split_key,
            split=split,
            n_cells=n_cells,
            seed=seed,
            out=out,
        )
    n_conditions = pred.obs[[CONTEXT, PERTURBATION]].drop_duplicates().shape[0]
    typer.echo(f"predicted {pred.n_obs} cells of {n_conditions} conditions")
    typer.echo(f"wrote {out}")


# --- evaluate --------------------------------------------------------------------------------


@app.command()
def evaluate(
    truth: Annotated[Path, typer.Option("--truth", help="Real cells (.h5ad, with controls).")],
    pred: Annotated[Path, typer.Option("--pred", help="Predicted cells or pseudobulk (.h5ad).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    train: Annotated[
        Path | None, typer.Option(help="Training cells: mean baseline, Systema, VCC score.")
    ] = None,
    metrics: Annotated[str | None, typer.Option(help="Comma-separated metrics.")] = None,
    ceiling: Annotated[bool, typer.Option(help="Compute the split-half noise ceiling.")] = True,
    seed: Annotated[int, typer.Option()] = 0,
    split_key: Annotated[
        str | None,
        typer.Option(
            help="obs column of a split in TRUTH: score its held-out cells (with their contexts' "
            "controls) and train on its training cells (of --train if given)."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Held-out split label scored.")] = TEST,
) -> None:
    """Score a prediction against real cells: metrics.csv, summary.json and report.html in OUT."""
    from celltwin.eval import evaluate_files
    from celltwin.pl import REPORT_FILE, evaluation_text, write_evaluation

    with _user_errors():
        result = evaluate_files(
            truth,
            pred,
            train=train,
            metrics=_list(metrics),
            ceiling=ceiling,
            seed=seed,
            split_key=split_key,
            split=split,
        )
        written = write_evaluation(result, out)
    typer.echo(evaluation_text(result, report=written / REPORT_FILE))
    typer.echo(f"wrote {out}")


# --- benchmark -------------------------------------------------------------------------------


@app.command()
def benchmark(
    suite: Annotated[str, typer.Argument(help="Suite name (see celltwin.benchmark.suites()).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models (default: the suite's).")
    ] = None,
    folds: Annotated[
        str | None, typer.Option(help="Comma-separated folds (default: every fold).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the models and the evaluation.")] = 0,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="Suite option KEY=VALUE, repeatable (e.g. smoke=true)."),
    ] = None,
    isolate: Annotated[
        bool, typer.Option(help="Fit each model-fold in its own process (honest memory).")
    ] = True,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Run a benchmark suite and write leaderboard.csv/.md, results.csv, report.html, run.json."""
    from celltwin.benchmark import parse_options, run_benchmark
    from celltwin.pl import REPORT_FILE, headline

    with _user_errors():
        board = run_benchmark(
            suite,
            models=_list(models),
            folds=_list(folds),
            out=out,
            seed=seed,
            isolate=isolate,
            report=report,
            **parse_options(option or []),
        )
    report_path = out / REPORT_FILE if report else None
    typer.echo(headline(board.verdict(), report=report_path, unit="fold") + "\n")
    typer.echo(board.to_markdown())
    typer.echo(f"wrote {out}")


@app.command("models")
def models_command() -> None:
    """List the registered models (cell, pseudobulk and signature models): what they predict,
    which unseen conditions they handle, and the pip extra they need (with whether it is
    installed)."""
    from celltwin.benchmark import list_models

    table = list_models()
    table["installed"] = table["installed"].map({True: "yes", False: "no"})
    table["extra"] = table["extra"].replace("", "-")
    columns = ["name", "predicts", "handles_unseen", "extra", "installed", "suites", "description"]
    # to_string ignores display.max_colwidth: long suite lists and descriptions are cut here.
    for column, width in (("suites", 40), ("description", 70)):
        text = table[column].astype(str)
        table[column] = text.where(text.str.len() <= width, text.str.slice(0, width - 3) + "...")
    typer.echo(table[columns].to_string(index=False))


def main() -> None:
    """Run the ``celltwin`` command line."""
    app()
