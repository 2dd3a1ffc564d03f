"""The ``celltwin`` command line.

No logic lives here: each command parses its options, calls one public function and prints what
it returns. Expected failures (bad input, missing or existing files, unreachable sources) are
printed as one clear message in CLI words with exit code 2, not as a traceback (``--debug``
shows it; see :mod:`._errors`). Commands that write refuse to replace an existing output
unless given ``--force``.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from celltwin._keys import TEST

from ._errors import set_debug, user_errors
from ._explain import explain
from ._fit import fit, predict
from ._listing import FormatOpt, WideOpt, data_app, list_suites, models_command
from ._options import ForceOpt, comma_list, refuse_existing
from ._scale import de, pseudobulk
from ._screen import EPILOG as SCREEN_EPILOG
from ._screen import screen
from ._tables import TableFormat

app = typer.Typer(
    help="celltwin: learn, predict and honestly evaluate perturbation responses of cells.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"show_default": True},
)
app.add_typer(data_app, name="data")

_user_errors = user_errors


class _StderrHandler(logging.StreamHandler):
    """Logs to the current ``sys.stderr`` (several runs in one process each have their own)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what celltwin does.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of any error.")
    ] = False,
) -> None:
    set_debug(debug)
    # celltwin's own INFO lines (which convention was read, what was fetched) are worth seeing
    # without decoration; other libraries' only with --verbose.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("celltwin")
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


@app.command()
def version() -> None:
    """Print the installed celltwin version."""
    from celltwin._version import __version__

    typer.echo(__version__)


# --- files -----------------------------------------------------------------------------------


def _read_options(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help=".h5ad file or signature file/folder.")],
    top: Annotated[int, typer.Option(help="How many of the largest perturbations to list.")] = 10,
) -> None:
    """Describe what a file holds in celltwin's terms (convention, conditions, controls, problems).

    Exit code: 0 when the file has no problems or only warnings, 1 when it has errors (NaN or
    negative values, duplicate genes, missing labels, no control cells, ...), 2 when it cannot
    be read. Scripts can use `celltwin info FILE` as a check.
    """
    from celltwin.io import info as info_text

    with _user_errors():
        text = info_text(path, top=top)
    typer.echo(text)
    raise typer.Exit(code=info_exit_code(text))


def _opt(text: str) -> Any:
    """An optional text option of `prepare`, with its help."""
    return typer.Option(help=text, show_default=False)


@app.command()
def prepare(
    path: Annotated[Path, typer.Argument(help="Input .h5ad in any convention celltwin reads.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output canonical .h5ad.")],
    convention: Annotated[
        str,
        typer.Option(help="'auto' (detect), or celltwin, vcc, gears, scperturb, scgen, columns."),
    ] = "auto",
    perturbation_key: Annotated[
        str | None, _opt("obs column holding the perturbations (default: the convention's).")
    ] = None,
    control_label: Annotated[
        list[str] | None,
        _opt(
            "Label(s) of unperturbed cells in that column: comma-separated and/or repeated "
            "(--control-label NTg1,NTg2). Default: the convention's (non-targeting, ctrl, ...)."
        ),
    ] = None,
    guide_to_gene: Annotated[
        str | None,
        _opt(
            "Guide-level data: obs column naming each guide's target gene, so perturbations "
            "are genes and every control guide is a control."
        ),
    ] = None,
    context_key: Annotated[str | None, _opt("obs column with the cell type / line.")] = None,
    context: Annotated[
        str | None, _opt("One context for every cell (instead of --context-key).")
    ] = None,
    perturbation_type: Annotated[
        str | None,
        _opt("Type of every perturbation: crispr_ko, crispri, crispra, drug, ... (default: read)."),
    ] = None,
    batch_key: Annotated[str | None, _opt("obs column with the batch.")] = None,
    dose_key: Annotated[str | None, _opt("obs column with the dose (µM unless it says).")] = None,
    time_key: Annotated[
        str | None, _opt("obs column with the time (hours unless it says).")
    ] = None,
    gene_symbol_key: Annotated[
        str | None, _opt("var column with gene symbols (genes named by Ensembl IDs).")
    ] = None,
    output_convention: Annotated[
        str, typer.Option(help="Layout to write: celltwin, vcc, gears, scperturb, scgen.")
    ] = "celltwin",
    force: ForceOpt = False,
) -> None:
    """Read any supported convention, validate, normalise, and write canonical (or another) layout."""
    from celltwin.io import prepare as prepare_file

    refuse_existing(out, force=force, kind="file", what="output file")
    controls = [c for value in control_label or [] for c in _list(value) or []]
    with _user_errors():
        written = prepare_file(
            path,
            out=out,
            output_convention=output_convention,
            convention=convention,
            **_read_options(
                perturbation_key=perturbation_key,
                control_label=controls or None,
                gene_key=guide_to_gene,
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


_ERRORS_FOUND = re.compile(r"^\s*problems\s+(\d+) error", re.MULTILINE)


def info_exit_code(text: str) -> int:
    """1 when ``celltwin info``'s report lists errors, else 0 (warnings only or none)."""
    found = _ERRORS_FOUND.search(text)
    return 1 if found and int(found.group(1)) > 0 else 0


_list = comma_list


@app.command()
def split(
    path: Annotated[Path, typer.Argument(help="Canonical .h5ad (see `celltwin prepare`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .h5ad with the split stored.")],
    strategy: Annotated[
        str, typer.Option(help="perturbations, contexts, combinations, drugs or doses.")
    ] = "perturbations",
    test: Annotated[
        str | None, typer.Option(help="Comma-separated held-out names (overrides --test-fraction).")
    ] = None,
    val: Annotated[
        str | None,
        typer.Option(help=r"Comma-separated validation names. \[default: none]"),
    ] = None,
    test_fraction: Annotated[
        float | None,
        typer.Option(
            help=r"Fraction of perturbations (or drugs) held out for test. \[default: 0.2]"
        ),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(help=r"Fraction held out for validation. \[default: 0: no validation set]"),
    ] = None,
    few_shot: Annotated[
        int | None,
        typer.Option(
            help=r"contexts: perturbations per held-out context kept as examples. \[default: 0]"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random choice of held-out units.")] = 0,
    key: Annotated[str, typer.Option(help="obs column the split is written to.")] = "split",
    force: ForceOpt = False,
) -> None:
    """Write a deterministic, leakage-checked train/val/test split into the file's obs and uns,
    and print what it holds (cells and perturbations per split and per context)."""
    from celltwin.io import describe_split
    from celltwin.split import split_file

    refuse_existing(out, force=force, kind="file", what="output file")
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
        typer.echo(describe_split(written, key=key).to_text())
    typer.echo(f"wrote {written}")


# --- fit and predict (in ._fit) -------------------------------------------------------------

app.command("fit")(fit)
app.command("predict")(predict)

# --- out of core, here or on Dask (in ._scale) -----------------------------------------------

app.command("pseudobulk")(pseudobulk)
app.command("de")(de)


# --- evaluate --------------------------------------------------------------------------------


@app.command()
def evaluate(
    truth: Annotated[Path, typer.Option("--truth", help="Real cells (.h5ad, with controls).")],
    pred: Annotated[Path, typer.Option("--pred", help="Predicted cells or pseudobulk (.h5ad).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    train: Annotated[
        Path | None, typer.Option(help="Training cells: mean baseline, Systema, VCC score.")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics (default: the standard set).")
    ] = None,
    ceiling: Annotated[bool, typer.Option(help="Compute the split-half noise ceiling.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the ceiling's halves and the CIs.")] = 0,
    split_key: Annotated[
        str | None,
        typer.Option(
            help="obs column of a split in TRUTH: score its held-out cells (with their contexts' "
            "controls) and train on its training cells (of --train if given)."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Held-out split label scored.")] = TEST,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Score the perturbations both files hold; otherwise any missing one is refused.",
        ),
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Score a prediction against real cells: metrics.csv, summary.json and report.html in OUT."""
    from celltwin.eval import evaluate_files
    from celltwin.pl import REPORT_FILE, evaluation_text, write_evaluation

    refuse_existing(out, force=force, kind="folder", what="evaluation folder")
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
            allow_missing=allow_missing,
        )
        written = write_evaluation(result, out)
    typer.echo(evaluation_text(result, report=written / REPORT_FILE))
    typer.echo(f"wrote {out}")


# --- benchmark -------------------------------------------------------------------------------


@app.command()
def benchmark(
    suite: Annotated[
        str | None, typer.Argument(help="Suite name (see `celltwin benchmark --list`).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (needed to run a suite).")
    ] = None,
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
    force: ForceOpt = False,
    list_: Annotated[
        bool, typer.Option("--list", help="List the suites (data, folds, models) and exit.")
    ] = False,
    wide: WideOpt = False,
    fmt: FormatOpt = TableFormat.table,
) -> None:
    """Run a benchmark suite (see --list) and write leaderboard.csv/.md, results.csv, report.html."""
    from celltwin.benchmark import get_suite, parse_options, run_benchmark
    from celltwin.pl import REPORT_FILE, headline

    if list_:
        typer.echo(list_suites(wide=wide, fmt=fmt))
        return
    if suite is None or out is None:
        typer.secho(
            "error: give a SUITE and --out OUT (see `celltwin benchmark --list`)",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=2)
    with _user_errors():
        get_suite(suite)  # an unknown name first: it says which suites there are
    refuse_existing(out, force=force, kind="folder", what="benchmark folder")
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


app.command("models")(models_command)
app.command("explain")(explain)
app.command("screen", epilog=SCREEN_EPILOG)(screen)


def main() -> None:
    """Run the ``celltwin`` command line."""
    app()
