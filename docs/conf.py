"""Sphinx configuration of celltwin's API reference (``make docs``).

The reference is built from the numpy docstrings in the source: ``_generate.py`` writes one page
per public package from its ``__all__`` and the command line's ``--help``; autosummary writes one
page per exported name. Nothing is fetched from the network (no intersphinx).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]  # this checkout's celltwin, installed or not

from _generate import data_docstring, write_pages  # noqa: E402

import celltwin  # noqa: E402

project = "celltwin"
author = "celltwin developers"
copyright = "celltwin developers"
release = version = celltwin.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"]
templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"

autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_typehints = "none"  # the numpy docstrings give the types; signatures stay readable
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # methods are documented in the class page (template)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"celltwin {release}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
html_static_path = ["_static"]
html_css_files = ["celltwin.css"]

write_pages(HERE / "api")


def _constant_docs(app, what, name, obj, options, lines) -> None:
    """A re-exported constant gets its ``#:`` comment, never the docstring of its type."""
    if what == "data":
        type_doc = inspect.cleandoc(type(obj).__doc__ or "")
        found = data_docstring(name, obj)
        if found or "\n".join(lines).strip() == type_doc.strip():
            lines[:] = found


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _constant_docs)
