"""``celltwin explain``: why responses look as they do (issue 19). Parses, calls the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._errors import user_errors
from ._options import ForceOpt, comma_list, refuse_existing

__all__ = ["explain"]


def explain(
    path: Annotated[
        Path,
        typer.Argument(
            help="Effect table (.csv/.tsv: genes x conditions, or long gene,condition,effect), "
            "a prediction (.h5ad from `celltwin predict`) or a screen (.h5ad with controls)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Cells with the controls of a prediction that has none (.h5ad)."),
    ] = None,
    gene_sets: Annotated[
        str, typer.Option(help="Gene sets: hallmark, c2cp, go_bp or kegg.")
    ] = "hallmark",
    network: Annotated[
        str, typer.Option(help="Prior networks of the paths, comma-separated: dorothea, string.")
    ] = "dorothea,string",
    top_genes: Annotated[
        int, typer.Option(help="Most affected genes per condition whose paths are sought.")
    ] = 20,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Saved model folder: add what each prediction leaned on (its sources).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the ranked enrichment's permutations.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Explain responses: regulator and pathway activity, gene-set enrichment, regulatory paths
    (and for a screen, its causal map); tables, GraphML and report.html in OUT."""
    from celltwin.explain import explain_file
    from celltwin.pl import REPORT_FILE, write_explanation

    refuse_existing(out, force=force, kind="folder", what="explanation folder")
    with user_errors():
        if top_genes < 1:
            raise ValueError(f"--top-genes must be >= 1 (got {top_genes})")
        result = explain_file(
            path,
            data=data,
            model=model,
            gene_sets=gene_sets,
            network=comma_list(network) or [],
            n_genes=top_genes,
            seed=seed,
        )
        written = write_explanation(result, out, overwrite=force)
    typer.echo("\n".join(result.notes))
    typer.echo(f"report: {written / REPORT_FILE}")
    typer.echo(f"wrote {out}")
