"""celltwin: an open-source toolkit for AI virtual cells.

Import the package once and reach its parts as attributes, as with scanpy's ``sc.pp``::

    import celltwin as ct

    adata = ct.data.load("kang2018")
    ct.split.split_contexts(adata, test=["CD14_Mono"])
    model = ct.models.get_model("mean").fit(adata)

The subpackages load on first use (PEP 562), so ``import celltwin`` itself imports neither torch
nor scanpy nor anndata: ``ct.models`` imports :mod:`celltwin.models` the first time it is read.
"""

# typing costs more to import than this whole module; mypy treats a name TYPE_CHECKING as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import (
        benchmark,
        data,
        eval,
        explain,
        io,
        models,
        pl,
        pp,
        priors,
        screen,
        simulate,
        split,
        testing,
    )
    from ._version import __version__
del TYPE_CHECKING

__all__ = [
    "__version__",
    "benchmark",
    "data",
    "eval",
    "explain",
    "io",
    "models",
    "pl",
    "pp",
    "priors",
    "screen",
    "simulate",
    "split",
    "testing",
]
_SUBPACKAGES = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> object:
    """Import a subpackage (or read the version) the first time it is asked for."""
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "__version__":
        version = importlib.import_module(f"{__name__}._version").__version__
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and the subpackages it loads on demand (for tab completion)."""
    return sorted({*globals(), *__all__})
