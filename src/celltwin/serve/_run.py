"""Start the server (what ``celltwin serve`` calls)."""

from __future__ import annotations

import os
from typing import Any

from ._app import SERVE_EXTRA, create_app
from ._security import check_bind, read_token

__all__ = ["run"]


def run(
    model_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token_file: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    n_threads: int | None = 2,
    **app_options: Any,
) -> None:
    """Serve ``model_dir`` with uvicorn until interrupted.

    Parameters
    ----------
    model_dir
        A saved model folder (see :func:`create_app`).
    host, port
        Where to listen. Any host other than a loopback address needs ``token_file``.
    token_file
        A file holding the bearer token (:func:`read_token`).
    data
        Control cells (see :func:`create_app`).
    n_threads
        Torch threads.
    **app_options
        Other options of :func:`create_app` (``max_body``, ``max_candidates``, ...).

    Raises
    ------
    ValueError
        When ``host`` is not loopback and no token is given, or the token is unusable.
    """
    token = read_token(token_file) if token_file is not None else None
    check_bind(host, token)
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError(f"celltwin serve needs uvicorn: {SERVE_EXTRA}") from err
    app = create_app(model_dir, data=data, token=token, n_threads=n_threads, **app_options)
    uvicorn.run(app, host=host, port=port, log_level="info", workers=1)
