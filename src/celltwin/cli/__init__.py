"""The ``celltwin`` command line: parses arguments and calls the public API."""

from ._main import app, main

__all__ = ["app", "main"]
