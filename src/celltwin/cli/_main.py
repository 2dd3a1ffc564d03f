"""Command-line entry point (no logic here: parse, call the public API, print)."""

from __future__ import annotations

import typer

app = typer.Typer(help="celltwin: AI virtual cells", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print the installed celltwin version."""
    from celltwin import __version__

    typer.echo(__version__)


def main() -> None:
    """Run the CLI."""
    app()
