"""The public surface follows the project's conventions (after scanpy's test_package_structure)."""

from __future__ import annotations

import importlib
import inspect

import pytest

SUBPACKAGES = ["io", "priors", "data", "simulate", "pp", "split", "models", "eval", "pl", "screen"]


def _public_callables():
    for sub in SUBPACKAGES:
        try:
            mod = importlib.import_module(f"celltwin.{sub}")
        except ModuleNotFoundError:
            continue
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"celltwin.{sub}.{name}", obj


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_all_names_exist(sub: str) -> None:
    try:
        mod = importlib.import_module(f"celltwin.{sub}")
    except ModuleNotFoundError:
        pytest.skip(f"celltwin.{sub} not present")
    for name in getattr(mod, "__all__", []):
        assert hasattr(mod, name), f"celltwin.{sub}.__all__ lists missing name {name!r}"


def test_data_first_then_keyword_only() -> None:
    """Public functions take the data (at most two positional parameters), then keyword-only options."""
    offenders = []
    for qualname, func in _public_callables():
        params = list(inspect.signature(func).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) > 2:
            offenders.append(f"{qualname}{inspect.signature(func)}")
    assert not offenders, "options must be keyword-only:\n" + "\n".join(offenders)


def test_public_functions_have_docstrings() -> None:
    missing = [q for q, f in _public_callables() if not (f.__doc__ or "").strip()]
    assert not missing, f"public functions without docstrings: {missing}"


def test_test_modules_have_unique_names() -> None:
    """Test folders are not packages, so two test files with one name break collection."""
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names
