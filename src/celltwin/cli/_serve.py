"""``celltwin serve``: the HTTP API (and page) of a saved model. Parses, calls the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._errors import user_errors

__all__ = ["serve"]


def serve(
    model_dir: Annotated[Path, typer.Argument(help="Saved model folder (celltwin fit --out).")],
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but loopback needs --token-file.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding a bearer token every API request must send.", show_default=False
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Control cells of the contexts (.h5ad) for cell models; default "
            "MODEL_DIR/controls.h5ad.",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads.", min=1)] = 2,
    workers: Annotated[int, typer.Option(help="Screen jobs run at once.", min=1)] = 2,
    max_body: Annotated[
        int, typer.Option(help="Largest request body in bytes (413 above).", min=1)
    ] = 1_000_000,
    max_candidates: Annotated[
        int, typer.Option(help="Most candidates of one screen.", min=1)
    ] = 50_000,
    cache_size: Annotated[
        int, typer.Option(help="Predictions kept to answer repeated questions (0: none).", min=0)
    ] = 1024,
) -> None:
    """Serve a model over HTTP: JSON API under /api/v1 (schema at /api/v1/openapi.json).

    Example: celltwin serve model/ --data split.h5ad, then open http://127.0.0.1:8000/.
    """
    from celltwin.serve import check_bind, read_token, run

    with user_errors():
        token = read_token(token_file) if token_file is not None else None
        check_bind(host, token)  # before anything is loaded or bound
        if not model_dir.is_dir():
            raise FileNotFoundError(f"MODEL_DIR {str(model_dir)!r} is not a folder")
        run(
            model_dir, host=host, port=port, token_file=token_file, data=data, n_threads=threads,
            workers=workers, max_body=max_body, max_candidates=max_candidates,
            cache_size=cache_size,
        )  # fmt: skip
