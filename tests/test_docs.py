"""The API reference: its quick start runs as written, and its pages cover every package and command.

``make docs`` builds the reference with warnings as errors; these tests keep what it is built from
honest without Sphinx: the quick start script runs, and the generated pages list every public
package, every name of each ``__all__`` and every command.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import celltwin

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("celltwin_docs_generate", DOCS / "_generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_runs(tmp_path: Path) -> None:
    """docs/quickstart.py, shown in the quick start page, runs end to end on simulated data."""
    done = subprocess.run(
        [sys.executable, str(DOCS / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "celltwin dataset summary" in done.stdout
    for column in ("baseline_control", "baseline_mean", "ceiling"):
        assert column in done.stdout
    assert list(tmp_path.iterdir()) == []  # it writes nothing


def test_every_public_package_has_a_page(generate: ModuleType) -> None:
    assert sorted(generate.PACKAGES) == sorted(set(celltwin.__all__) - {"__version__"})


def test_package_pages_list_their_all(generate: ModuleType, tmp_path: Path) -> None:
    for name in generate.PACKAGES:
        page = generate.package_page(name)
        listed = {line.strip() for line in page.splitlines() if line.startswith("   ")}
        # Type aliases are documented by a py:data directive instead of autosummary.
        listed |= {
            line.removeprefix(".. py:data:: ").strip()
            for line in page.splitlines()
            if line.startswith(".. py:data:: ")
        }
        exported = set(importlib.import_module(f"celltwin.{name}").__all__)
        assert exported <= listed, f"celltwin.{name}: {sorted(exported - listed)} not on its page"


def test_cli_page_shows_every_command(generate: ModuleType) -> None:
    import typer

    from celltwin.cli import app

    page = generate.cli_page()
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    for name in group.commands:
        assert f"\ncelltwin {name}\n" in page, f"`celltwin {name}` missing from the CLI page"
    assert "celltwin data fetch" in page
    assert "Usage: celltwin fit [OPTIONS]" in page
