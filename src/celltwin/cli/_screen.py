"""``celltwin screen``: rank candidate perturbations by an objective. Parses, calls the public
API (:func:`celltwin.screen.screen` and the candidate builders), prints the top hits."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import user_errors
from ._options import ForceOpt, comma_list, refuse_existing

if TYPE_CHECKING:
    from celltwin.screen import Candidates

__all__ = ["EPILOG", "screen"]

#: The screen's HTML page inside its output folder.
PAGE = "screen.html"
#: Where a screen's checkpoint lives inside its output folder (``--resume`` reads it).
CHECKPOINT = "checkpoint"

EPILOG = """\b
Example: Papalexi THP-1 knockouts (model/, split.h5ad: the README's fit).
  celltwin screen model/ --data split.h5ad --context THP-1 \\
      --all-genes --objective move --up-genes STAT1,IRF1 --out hits/
  celltwin screen model/ --data split.h5ad --context THP-1 \\
      --genes STAT1,JAK2,IFNGR1 --pairs --objective specific --out pairs/
  celltwin screen model/ --data split.h5ad --context THP-1 \\
      --all-genes --measured sigs.h5ad --objective reverse \\
      --query disease.csv --time-budget 600 --out rev/
  (stopped by the budget: the same command with --resume goes on)

\b
OUT: screen.parquet and screen.csv (rank, label, score, lower, upper,
pvalue, fdr, in_domain, prediction_source, top_genes), effects.h5ad
(top hits), cells.h5ad (their predicted cells), refused.csv (what the
model cannot predict, and why), meta.json, screen.html (the page:
ranked bars with intervals, in-domain scores, a volcano of the top hit)."""


def _objective(
    name: str,
    query: Path | None,
    up_genes: list[str] | None,
    down_genes: list[str] | None,
    pathway: str | None,
    toward: str,
) -> Any:
    """The objective the flags name, from celltwin.screen's registry."""
    from celltwin.screen import get_objective, query_from_sets, read_query

    if name in ("reverse", "mimic"):
        if query is not None and (up_genes or down_genes):
            raise ValueError("--query and --up-genes/--down-genes: give one query, not both.")
        if query is not None:
            return get_objective(name, query=read_query(query))
        if up_genes or down_genes:
            return get_objective(name, query=query_from_sets(up_genes or (), down_genes or ()))
        raise ValueError(
            f"--objective {name} needs a query. Fix: --query FILE (gene,score table, ranked "
            "genes or .gmt) or --up-genes G1,G2 / --down-genes G3,G4."
        )
    if name == "move":
        if not (up_genes or down_genes or pathway):
            raise ValueError(
                "--objective move needs targets. Fix: --up-genes/--down-genes G1,G2 or "
                "--pathway JAK-STAT."
            )
        params: dict[str, Any] = {"up": up_genes or (), "down": down_genes or ()}
        if pathway:
            params.update(pathway=pathway, toward=toward)
        return get_objective("move", **params)
    if name == "move_population":
        raise ValueError(
            "--objective move_population scores against a sample's and a reference's cells, "
            "which this command does not take. Fix: use celltwin.screen.virtual_twin(model, "
            "sample, reference=..., candidates=...) in Python, or --objective move/specific."
        )
    return get_objective(name)


def _candidates(
    model: Any,
    *,
    genes: list[str] | None,
    genes_file: Path | None,
    all_genes: bool,
    pairs: bool,
    drugs: Path | None,
    doses: list[str] | None,
    measured: list[Path] | None,
    cmap: bool,
) -> Candidates:
    """The candidates the flags name, joined."""
    from celltwin import screen as screen_api

    if sum([genes is not None, genes_file is not None, all_genes]) > 1:
        raise ValueError("--genes, --genes-file and --all-genes: give one of them.")
    if genes_file is not None:
        if not genes_file.is_file():
            raise FileNotFoundError(f"--genes-file {str(genes_file)!r} not found.")
        genes = genes_file.read_text(encoding="utf-8").split()
    if pairs and genes is None:
        raise ValueError("--pairs pairs the --genes (or --genes-file) list. Fix: give one.")
    parts = []
    if all_genes:
        parts.append(screen_api.representable(model))
    if genes is not None:
        parts.append(screen_api.genes(genes))
        if pairs:
            parts.append(screen_api.pairs(genes))
    if (drugs is None) != (doses is None):
        raise ValueError(
            "--drugs and --doses go together. Fix: e.g. --drugs lib.csv --doses 0.1,1,10"
        )
    if drugs is not None and doses is not None:
        try:
            grid = [float(d) for d in doses]
        except ValueError:
            raise ValueError(f"--doses must be numbers in uM (got {','.join(doses)})") from None
        parts.append(screen_api.drugs(drugs, grid))
    for path in measured or []:
        parts.append(screen_api.measured(path, prefix="measured:"))
    if cmap:
        parts.append(screen_api.cmap())
    if not parts:
        raise ValueError(
            "no candidates. Fix: --genes G1,G2, --genes-file F, --all-genes, --drugs FILE "
            "--doses D1,D2, --measured FILE or --cmap."
        )
    return screen_api.concat(*parts)


def screen(
    model_dir: Annotated[Path, typer.Argument(help="Saved model folder (`celltwin fit --out`).")],
    data: Annotated[
        Path, typer.Option("--data", help="Cells with the context's controls (.h5ad).")
    ],
    context: Annotated[str, typer.Option("--context", help="Context to screen in (e.g. THP-1).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    genes: Annotated[str | None, typer.Option(help="Genes to screen, comma-separated.")] = None,
    genes_file: Annotated[Path | None, typer.Option(help="Genes to screen, one per line.")] = None,
    all_genes: Annotated[
        bool, typer.Option("--all-genes", help="Every gene the model can represent.")
    ] = False,
    pairs: Annotated[bool, typer.Option("--pairs", help="Also every pair of the genes.")] = False,
    pairs_of_top: Annotated[
        int | None,
        typer.Option(
            help="Then screen every pair of the N best single genes too.", show_default=False
        ),
    ] = None,
    drugs: Annotated[
        Path | None, typer.Option(help="Drug library, CSV of name,SMILES (with --doses).")
    ] = None,
    doses: Annotated[str | None, typer.Option(help="Dose grid in uM, e.g. 0.1,1,10.")] = None,
    measured: Annotated[
        list[Path] | None,
        typer.Option(
            help="Measured profiles to screen beside the predictions (.h5ad of "
            "effects, .json.gz signatures, .csv gene scores); repeatable."
        ),
    ] = None,
    cmap: Annotated[
        bool, typer.Option("--cmap", help="The 56 Connectivity Map rank profiles (shared data).")
    ] = False,
    objective: Annotated[
        str, typer.Option(help="reverse, mimic (a query), move (genes/pathway) or specific.")
    ] = "specific",
    query: Annotated[
        Path | None, typer.Option(help="Query signature: gene,score table, ranked genes or .gmt.")
    ] = None,
    up_genes: Annotated[str | None, typer.Option(help="Genes up in the query / to raise.")] = None,
    down_genes: Annotated[str | None, typer.Option(help="Genes down / to lower.")] = None,
    pathway: Annotated[
        str | None, typer.Option(help="move: a pathway or regulator (JAK-STAT, STAT1).")
    ] = None,
    toward: Annotated[
        str, typer.Option(help="move --pathway: raise (up) or lower (down) its activity.")
    ] = "up",
    top: Annotated[int, typer.Option(help="Top hits that keep effects and get cells.")] = 20,
    n_cells: Annotated[int, typer.Option(help="Cells generated per top hit.")] = 200,
    batch_size: Annotated[int, typer.Option(help="Candidates per batch.")] = 1024,
    time_budget: Annotated[
        float | None, typer.Option(help="Seconds; stops after the batch that exceeds it.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Go on from OUT's checkpoint (same arguments).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of predictions, intervals and cells.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    force: ForceOpt = False,
) -> None:
    """Screen candidate perturbations in one context and rank them by an objective."""
    from celltwin import io, models, pl
    from celltwin import screen as screen_api

    checkpoint = out / CHECKPOINT
    if resume and not (checkpoint / "manifest.json").is_file():
        with user_errors():
            raise FileNotFoundError(
                f"--resume: {str(out)!r} holds no screen checkpoint. Fix: run without --resume."
            )
    if not resume:
        refuse_existing(out, force=force, kind="folder", what="screen folder")
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint)  # --force without --resume: start over
    with user_errors():
        if top < 1 or n_cells < 1 or batch_size < 1:
            raise ValueError("--top, --n-cells and --batch-size must be >= 1")
        if pairs_of_top is not None and pairs_of_top < 2:
            raise ValueError(f"--pairs-of-top must be >= 2 (got {pairs_of_top})")
        up, down = comma_list(up_genes), comma_list(down_genes)
        goal = _objective(objective, query, up, down, pathway, toward)
        fitted = models.load(model_dir)
        candidates = _candidates(
            fitted, genes=comma_list(genes), genes_file=genes_file, all_genes=all_genes,
            pairs=pairs, drugs=drugs, doses=comma_list(doses), measured=measured, cmap=cmap,
        )  # fmt: skip
        adata = io.read(data)
        settings: dict[str, Any] = {
            "objective": goal, "context": context, "top": top, "n_cells": n_cells,
            "batch_size": batch_size, "time_budget": time_budget, "progress": progress,
            "seed": seed,
        }  # fmt: skip
        if pairs_of_top is not None:
            first = screen_api.screen(fitted, adata, candidates=candidates, **settings)
            candidates = screen_api.concat(candidates, screen_api.pairs_of_top(first, pairs_of_top))
        result = screen_api.screen(
            fitted, adata, candidates=candidates, checkpoint=checkpoint, **settings
        )
        result.write(out, force=True)
        pl.write_screen(result, out / PAGE, overwrite=True)
    _report(result, out)


def _report(result: Any, out: Path) -> None:
    """Print the top hits, the refusals and where the files are."""
    meta = result.meta
    cols = ["rank", "label", "score", "lower", "upper", "fdr", "in_domain", "prediction_source"]
    typer.echo(result.table[cols].head(10).to_string(index=False, float_format="%.3g"))
    typer.echo(
        f"{meta['n_scored']} scored, {meta['n_refused']} refused (refused.csv) of "
        f"{meta['n_candidates']} candidates in {meta['seconds']:.1f} s; objective "
        f"{result.objective.name} ({result.objective.direction} is better)"
    )
    for note in meta.get("notes", []):
        typer.echo(f"note: {note}")
    if not meta["complete"]:
        typer.echo(
            "partial: the time budget stopped the screen; run the same command with --resume "
            "to go on"
        )
    typer.echo(f"wrote {out} (open {out / PAGE})")
