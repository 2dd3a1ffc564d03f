"""Write the API reference's source pages from the code, so they cannot drift from it.

``docs/conf.py`` calls :func:`write_pages` at the start of every build: one page per public
package, listing what its ``__all__`` exports (autosummary then writes one page per name), and one
page with the ``--help`` of every command. The pages go to ``docs/api/`` (not committed).
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path

#: The public packages in the order data flows through them: where it comes from, what is done to
#: it, the models, and how they are judged and shown. tests/test_docs.py keeps it complete.
PACKAGES = (
    "io",
    "data",
    "priors",
    "simulate",
    "pp",
    "split",
    "models",
    "testing",
    "eval",
    "explain",
    "screen",
    "pl",
    "benchmark",
)
#: Section titles of a package page, in order, by kind of exported name.
KINDS = ("Functions", "Classes", "Exceptions", "Constants", "Type aliases")


def _kind(obj: object) -> str:
    if typing.get_origin(obj) is not None:  # a type alias such as tuple[str, str, str]
        return "Type aliases"
    if inspect.isclass(obj):
        return "Exceptions" if issubclass(obj, BaseException) else "Classes"
    return "Functions" if callable(obj) else "Constants"


def _underline(title: str, char: str) -> str:
    return f"{title}\n{char * len(title)}\n"


def package_page(name: str) -> str:
    """The reST page of ``celltwin.<name>``: its docstring, then its ``__all__`` by kind."""
    module = importlib.import_module(f"celltwin.{name}")
    groups: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for export in module.__all__:
        groups[_kind(getattr(module, export))].append(export)
    parts = [
        _underline(f"celltwin.{name}", "="),
        f".. automodule:: celltwin.{name}\n   :no-members:\n",
        f".. currentmodule:: celltwin.{name}\n",
    ]
    for kind, names in groups.items():
        if names and kind == "Type aliases":
            # autodoc cannot format an alias's "signature"; a plain py:data entry says it all.
            parts.append(_underline(kind, "-"))
            for n in names:
                doc = data_docstring(f"celltwin.{name}.{n}", getattr(module, n))
                body = "".join(f"   {line}\n" for line in doc)
                parts.append(f".. py:data:: {n}\n   :value: {getattr(module, n)}\n\n{body}")
        elif names:
            listing = "".join(f"   {n}\n" for n in names)
            parts.append(
                _underline(kind, "-")
                + f"\n.. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n{listing}"
            )
    return "\n".join(parts)


def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of a click group, depth first in the order of the help."""
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "hidden", False):
            continue
        yield (*path, name)
        yield from _commands(command, (*path, name))


def command_help(args: tuple[str, ...]) -> str:
    """What ``celltwin ARGS --help`` prints (80 columns, no colour)."""
    from typer.testing import CliRunner

    from celltwin.cli import app

    env = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--help"], env=env, prog_name="celltwin", terminal_width=80)
    if result.exit_code != 0:
        raise RuntimeError(f"celltwin {' '.join(args)} --help failed:\n{result.output}")
    return "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")


def cli_page() -> str:
    """The reST page of the command line: the ``--help`` of ``celltwin`` and of every command."""
    import typer

    from celltwin.cli import app

    parts = [
        _underline("Command line", "="),
        "Every command parses its options, calls one public function and prints what it returns;"
        " the help below is what each prints with ``--help``.\n",
    ]
    for args in [(), *_commands(typer.main.get_command(app))]:
        title = " ".join(("celltwin", *args))
        text = "\n".join(f"   {line}".rstrip() for line in command_help(args).splitlines())
        parts.append(f"{_underline(title, '-')}\n.. code-block:: text\n\n{text}\n")
    return "\n".join(parts)


def index_page() -> str:
    """The API reference's table of contents: one page per package, then the command line."""
    entries = "".join(f"   {name}\n" for name in PACKAGES)
    return (
        _underline("API reference", "=")
        + "\nOne page per public package, listing what its ``__all__`` exports; every name links"
        " to its full docstring. Import the top-level package once and reach the others as"
        " attributes (``import celltwin as ct; ct.models``): they load on first use.\n\n"
        + f".. toctree::\n   :maxdepth: 1\n\n{entries}   cli\n"
    )


def write_pages(out: Path) -> list[Path]:
    """Write ``index.rst``, one page per package and ``cli.rst`` into ``out``; unchanged files
    are left alone so Sphinx rebuilds only what changed."""
    out.mkdir(parents=True, exist_ok=True)
    pages = {"index": index_page(), "cli": cli_page()}
    pages.update({name: package_page(name) for name in PACKAGES})
    written = []
    for stem, text in pages.items():
        path = out / f"{stem}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def data_docstring(name: str, obj: object) -> list[str]:
    """The ``#:`` comment above the constant ``name`` in the private module that defines it.

    A package re-exports its constants, so autodoc, which reads the comments of the module it is
    documenting, would find none; this looks in the package's modules for the one whose
    attribute of that name is ``obj`` itself.
    """
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    package_name, _, attr = name.rpartition(".")
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        module = importlib.import_module(info.name)
        if getattr(module, attr, None) is not obj:
            continue
        docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
        if ("", attr) in docs:
            return list(docs["", attr])
    return []
