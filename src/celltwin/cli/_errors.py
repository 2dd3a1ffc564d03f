"""Expected failures as one clear message in CLI words; tracebacks only with ``--debug``.

celltwin's functions raise :class:`ValueError` (and its subclasses ``ValidationError``,
``ModelFormatError``, ``UnseenConditionError``), :class:`KeyError`, :class:`FileNotFoundError`,
:class:`FileExistsError` and ``DownloadError`` for bad input, missing files and unreachable
sources. The command line prints those as ``error: <message>`` with exit code 2. Their "Fix:"
hints name Python arguments (``overwrite=True``); :func:`cli_words` turns them into the flags
of the command line (``--force``) through the one table :data:`FLAGS`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import typer

__all__ = ["FLAGS", "cli_words", "set_debug", "user_errors"]

#: Python argument → command-line flag, for hints that name an argument.
FLAGS: Final[dict[str, str]] = {
    "overwrite": "--force",
    "force": "--force",
    "allow_missing": "--allow-missing",
    "perturbation_key": "--perturbation-key",
    "control_label": "--control-label",
    "context_key": "--context-key",
    "context": "--context",
    "perturbation_type": "--perturbation-type",
    "batch_key": "--batch-key",
    "dose_key": "--dose-key",
    "time_key": "--time-key",
    "gene_symbol_key": "--gene-symbol-key",
    "convention": "--convention",
    "output_convention": "--output-convention",
    "split_key": "--split-key",
    "test_fraction": "--test-fraction",
    "val_fraction": "--val-fraction",
    "few_shot": "--few-shot",
    "time_budget": "--time-budget",
    "checkpoint_dir": "--checkpoint-dir",
    "n_cells": "--n-cells",
    "metrics": "--metrics",
    "cache_dir": "--cache-dir",
    "gene_sets": "--gene-sets",
    "network": "--network",
    "data": "--data",
    "scheduler": "--scheduler",
    "max_cells": "--max-cells",
    "chunk_size": "--chunk-size",
    "match_batch": "--match-batch",
    "layer": "--layer",
    "token_file": "--token-file",
}

_KWARG = re.compile(
    r"\b(?P<name>[a-z][a-z_]*)=(?P<value>True\b|'[^']*'|\"[^\"]*\"|[\w.\-/]+)?(?![\w(])"
)
_READ_CALL = re.compile(r"celltwin\.io\.read\(\s*path\s*,\s*(?P<args>[^)]*)\)")


def _flag(match: re.Match[str]) -> str:
    name, value = match["name"], match["value"]
    flag = FLAGS.get(name)
    if flag is None or value in ("False", "None"):
        return match[0]
    if value is None or value == "True":
        return flag
    if value[0] in "'\"":
        value = value[1:-1]
    return f"{flag} {shlex.quote(value)}"


#: A hint's aside for Python users, "(Python: gene_key=...)": dropped for the command line.
_PYTHON_ASIDE = re.compile(r"\s*\(Python:[^()]*\)")


def cli_words(message: str) -> str:
    """``message`` with its Python hints in command-line words (``force=True`` → ``--force``)."""
    message = _PYTHON_ASIDE.sub("", message)
    message = message.replace(
        "the folder given to save()", "the folder given to celltwin fit --out"
    )
    message = _READ_CALL.sub(
        lambda m: "celltwin prepare FILE --out OUT.h5ad " + m["args"].replace(",", ""), message
    )
    return _KWARG.sub(_flag, message)


_debug = False


def set_debug(debug: bool) -> None:
    """Show tracebacks of expected failures too (the global ``--debug`` option)."""
    global _debug
    _debug = debug


def _expected(err: BaseException) -> bool:
    if isinstance(err, ValueError | KeyError | FileNotFoundError | FileExistsError):
        return True
    if isinstance(err, NotADirectoryError | IsADirectoryError):
        return True
    from celltwin.data import DownloadError  # deferred: keeps `celltwin --help` fast

    return isinstance(err, DownloadError)


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err) or type(err).__name__


@contextmanager
def user_errors() -> Iterator[None]:
    """Print an expected failure as ``error: <message>`` and exit with code 2.

    Unexpected exceptions propagate (with their traceback), and so does every exception with
    ``--debug``.
    """
    try:
        yield
    except Exception as err:
        if _debug or not _expected(err):
            raise
        typer.secho(f"error: {cli_words(_message(err))}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
