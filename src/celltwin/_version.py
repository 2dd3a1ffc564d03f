"""The installed version of celltwin, read once from the package metadata (pyproject.toml).

A bottom-floor module: any package imports ``__version__`` from here (``from .._version import
__version__``) without importing the top-level package.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("celltwin")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
