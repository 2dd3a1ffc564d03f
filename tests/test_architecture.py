"""The import graph of ``src/celltwin`` keeps its floors (issue 14, "Floors that hold").

The graph is built with :mod:`ast` from every ``.py`` file under ``src/celltwin``, counting every
``import`` statement wherever it stands: at module level, inside functions and methods, and inside
``if TYPE_CHECKING:`` blocks. An import inside a function still ties two modules together; it only
delays when the tie is felt, so it may not be used to hide a circle or an upward arrow (imports
inside functions are for heavy optional dependencies, see ``test_optional_dependencies_are_lazy``).

Rules
-----
Floors
    :data:`FLOORS` lists the units bottom to top. A unit is a top-level package (``io``,
    ``models``) or a top-level private module (``_keys``). A module may import from its own unit
    and from units on lower floors. Units on one floor may not import each other unless the pair is
    listed in :data:`SAME_FLOOR`. The top-level private modules (floor 0) are the private modules
    of ``celltwin`` itself and import each other freely. The top-level package ``celltwin``
    (its ``__init__``, which loads the subpackages lazily) stands above every floor, so no
    subpackage imports it: ``__version__`` comes from ``celltwin._version``.
Privacy
    A unit reaches another unit only through its public names: no module path or imported name
    with a component starting with ``_`` past the other unit's top level
    (``from ..models._base import Model`` and ``from ..models import _helper`` are both refused;
    ``from ..models import Model`` is the way). The top-level private modules are public to every
    package (that is what they are for), but their own ``_names`` are not.
Circles
    ``if TYPE_CHECKING:`` imports do not count for circles: they never run, so they cannot make
    an import order matter, and a type-only cycle is the ordinary price of annotating both sides
    of a relation. They do count for floors and privacy: a type names a dependency as much as a
    call does. Every other import counts. (a) Between units there may be no circle at all. (b)
    Inside one unit, modules may not import each other in a circle either, with one exception:
    the edges from a package's ``__init__`` to its own submodules (its re-exports) are left out,
    so a submodule that takes a sibling's name through ``from . import name`` is not a circle.
    Python always runs a package's ``__init__`` first, and the ``__init__`` only gathers names;
    a circle that closes only through it is the package's public face, not two rooms that need
    each other.
"""

from __future__ import annotations

# One file over 400 lines on purpose: the rules as data, the checker and the checker's own tests
# are read together when a rule changes.
import ast
import sys
import tomllib
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "celltwin"
TOP = "celltwin"

#: The floors, bottom to top. Floor 0 holds the top-level private modules (any ``celltwin._x``
#: module belongs there, listed or not).
FLOORS: tuple[tuple[str, ...], ...] = (
    ("_keys", "_settings", "_version"),
    ("io", "priors"),
    ("pp",),
    ("simulate", "split"),
    ("data",),
    ("models", "testing"),
    ("eval",),
    ("explain",),
    ("screen",),
    ("pl",),
    ("benchmark",),
    ("cli",),
)

#: Arrows allowed between two units of one floor, as (importer, imported). Today: the published
#: conformance checks (``testing``) exercise the models they check; no other pair on a floor
#: needs the other (``io``/``priors`` and ``simulate``/``split`` are independent).
SAME_FLOOR: frozenset[tuple[str, str]] = frozenset({("testing", "models")})

#: Import names of the runtime dependencies in pyproject.toml whose distribution name differs.
_IMPORT_NAMES = {"scikit-learn": "sklearn"}


@dataclass(frozen=True)
class Edge:
    """One imported module (or name of a module) at one line of one module."""

    source: str  # importing module, dotted (``celltwin.io._read``)
    target: str  # imported module, dotted: the most specific module that exists
    name: str | None  # the name taken from ``target`` when it is not itself a module
    path: Path
    line: int
    type_checking: bool  # inside ``if TYPE_CHECKING:``
    in_function: bool

    @property
    def where(self) -> str:
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"

    @property
    def what(self) -> str:
        return f"{self.target}.{self.name}" if self.name else self.target


# --- building the graph ---------------------------------------------------------------------


def module_files(src: Path, top: str = TOP) -> dict[str, Path]:
    """Map each dotted module name under ``src`` (the package folder ``top``) to its file."""
    files = {}
    for path in sorted(src.rglob("*.py")):
        parts = [top, *path.relative_to(src).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportVisitor(ast.NodeVisitor):
    """Collect every import statement with whether it is in a function or a TYPE_CHECKING block."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, bool, bool]] = []
        self._functions = 0
        self._type_checking = 0

    def _in_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _in_function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self._type_checking += 1
        for child in node.body:
            self.visit(child)
        self._type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def _record(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append((node, self._type_checking > 0, self._functions > 0))

    visit_Import = visit_ImportFrom = _record


def _existing(dotted: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``dotted`` that is a module of the tree."""
    parts = dotted.split(".")
    while ".".join(parts) not in modules and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _resolve(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]
) -> Iterator[tuple[str, str | None]]:
    """Yield (target module, name or None) for each part of ``node`` that lies in the tree."""
    top = next(iter(modules)).split(".")[0]
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == top or alias.name.startswith(top + "."):
                yield _existing(alias.name, modules), None
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        if node.module:
            base += node.module.split(".")
        dotted = ".".join(base)
    else:
        dotted = node.module or ""
    if dotted != top and not dotted.startswith(top + "."):
        return
    for alias in node.names:
        sub = f"{dotted}.{alias.name}"
        if sub in modules:
            yield sub, None
        else:
            yield _existing(dotted, modules), alias.name


def import_edges(src: Path = SRC, top: str = TOP) -> list[Edge]:
    """Every import of a module of the tree by a module of the tree."""
    modules = module_files(src, top)
    edges = []
    for module, path in modules.items():
        visitor = _ImportVisitor()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        is_package = path.name == "__init__.py"
        for node, type_checking, in_function in visitor.found:
            for target, name in _resolve(node, module, is_package, modules):
                if target != module:
                    edges.append(
                        Edge(module, target, name, path, node.lineno, type_checking, in_function)
                    )
    return edges


def external_imports(src: Path = SRC, top: str = TOP) -> Iterator[tuple[Path, int, str, bool]]:
    """(file, line, top-level import name, at module level) of every import outside the tree."""
    for path in module_files(src, top).values():
        visitor = _ImportVisitor()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for node, type_checking, in_function in visitor.found:
            if isinstance(node, ast.ImportFrom) and (node.level or not node.module):
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                root = (name or "").split(".")[0]
                if root != top:
                    yield path, node.lineno, root, not (type_checking or in_function)


# --- units and floors -----------------------------------------------------------------------


def unit_of(module: str) -> str:
    """``celltwin.models._base`` -> ``models``; ``celltwin._keys`` -> ``_keys``; root -> ``celltwin``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def floor_of(unit: str, floors: tuple[tuple[str, ...], ...] = FLOORS) -> int | None:
    """The floor of ``unit``; the top-level package stands above all; None if not placed."""
    if "." not in unit and unit == TOP:
        return len(floors)
    for level, units in enumerate(floors):
        if unit in units:
            return level
    if unit.startswith("_"):
        return 0
    return None


def _private_part(edge: Edge) -> str | None:
    """The private component by which ``edge`` reaches into another unit, if any."""
    parts = edge.target.split(".")[2:]  # past ``celltwin.<unit>``
    if edge.name:
        parts.append(edge.name)
    for part in parts:
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return part
    return None


def floor_violations(
    edges: Iterable[Edge],
    floors: tuple[tuple[str, ...], ...] = FLOORS,
    same_floor: frozenset[tuple[str, str]] = SAME_FLOOR,
) -> list[str]:
    """One message per import that points up a floor or sideways without being listed."""
    found = []
    for edge in edges:
        src, dst = unit_of(edge.source), unit_of(edge.target)
        if src == dst:
            continue
        src_floor, dst_floor = floor_of(src, floors), floor_of(dst, floors)
        if src_floor is None or dst_floor is None:
            continue  # reported by test_every_unit_has_a_floor
        if dst == TOP:
            fix = (
                "import the subpackage itself, or __version__ from celltwin._version; the "
                "top-level package only gathers the others"
            )
        elif dst_floor > src_floor:
            fix = f"move the code it needs down to floor {src_floor} or below, or move the importer up"
        elif dst_floor == src_floor and src_floor > 0 and (src, dst) not in same_floor:
            fix = f"{src} and {dst} share floor {src_floor}: move the shared code down, or list the pair in SAME_FLOOR with a reason"
        else:
            continue
        kind = "sideways" if dst_floor == src_floor else "upward"
        found.append(
            f"{edge.where}: {edge.source} imports {edge.what} -- {kind} arrow {src} "
            f"(floor {src_floor}) -> {dst} (floor {dst_floor}){_how(edge)}. Fix: {fix}."
        )
    return found


def privacy_violations(edges: Iterable[Edge]) -> list[str]:
    """One message per import that reaches into another unit's private modules or names."""
    found = []
    for edge in edges:
        src, dst = unit_of(edge.source), unit_of(edge.target)
        private = _private_part(edge)
        if src == dst or private is None:
            continue
        if dst.startswith("_") and private == dst:
            continue  # top-level private modules serve every package
        public = f"{TOP}.{dst}"
        found.append(
            f"{edge.where}: {edge.source} imports {edge.what}, private to {dst} (through "
            f"{private!r}){_how(edge)}. Fix: export the name in {public}.__all__ and import it "
            f"from {public}, or move it to where both can reach it."
        )
    return found


def _how(edge: Edge) -> str:
    if edge.type_checking:
        return " [in TYPE_CHECKING]"
    if edge.in_function:
        return " [inside a function]"
    return ""


# --- circles --------------------------------------------------------------------------------


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """The shortest path start -> ... -> start (breadth first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return [start]


def _describe_cycles(
    graph: dict[str, set[str]], sites: dict[tuple[str, str], list[Edge]]
) -> list[str]:
    found = []
    for component in _components(graph):
        cycle = _shortest_cycle(graph, component[0])
        steps = []
        for a, b in pairwise(cycle):
            edge = sites[a, b][0]
            steps.append(f"    {a} -> {b}  ({edge.where}: imports {edge.what}{_how(edge)})")
        found.append(f"circle among {', '.join(component)}; for example:\n" + "\n".join(steps))
    return found


def circles_between_units(edges: Iterable[Edge]) -> list[str]:
    """One message per set of units that import each other in a circle (runtime imports)."""
    graph: dict[str, set[str]] = defaultdict(set)
    sites: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for edge in edges:
        src, dst = unit_of(edge.source), unit_of(edge.target)
        if src != dst and not edge.type_checking:
            graph[src].add(dst)
            sites[src, dst].append(edge)
    fix = "Fix: the lower unit must not know the upper one; move the shared code down a floor."
    return [f"{text}\n  {fix}" for text in _describe_cycles(graph, sites)]


def circles_inside_units(edges: Iterable[Edge], packages: Iterable[str]) -> list[str]:
    """One message per set of modules of one unit that import each other in a circle.

    ``packages`` are the modules that are packages (an ``__init__``): their edges to their own
    submodules are re-exports and left out.
    """
    inits = set(packages)
    graph: dict[str, set[str]] = defaultdict(set)
    sites: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for edge in edges:
        if edge.type_checking or unit_of(edge.source) != unit_of(edge.target):
            continue
        if edge.source in inits and edge.target.startswith(edge.source + "."):
            continue  # a package's __init__ re-exporting its own submodules
        graph[edge.source].add(edge.target)
        sites[edge.source, edge.target].append(edge)
    fix = (
        "Fix: split out what both need into a module that imports neither, or pass it in; "
        "an import inside a function does not break a circle."
    )
    return [f"{text}\n  {fix}" for text in _describe_cycles(graph, sites)]


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges()


def _fail(rule: str, found: list[str]) -> None:
    if found:
        pytest.fail(f"{len(found)} finding(s) against the rule: {rule}\n" + "\n".join(found), False)


def test_every_unit_has_a_floor() -> None:
    units = {unit_of(m) for m in module_files(SRC)} - {TOP}
    unplaced = sorted(u for u in units if floor_of(u) is None)
    assert not unplaced, f"packages without a floor: {unplaced}; add them to FLOORS in {__file__}"
    listed = {u for floor in FLOORS for u in floor if not u.startswith("_")}
    assert not listed - units, f"FLOORS lists packages that do not exist: {sorted(listed - units)}"


def test_imports_point_down(edges: list[Edge]) -> None:
    """(b) No import points to a higher floor, or sideways to an unlisted unit of the same floor."""
    _fail(
        "imports point only down the floors " + " -> ".join(map("/".join, FLOORS)),
        floor_violations(edges),
    )


def test_packages_meet_through_public_names(edges: list[Edge]) -> None:
    """(c) No package imports another package's private module or private name."""
    _fail("a package reaches another only through its public names", privacy_violations(edges))


def test_no_circle_between_packages(edges: list[Edge]) -> None:
    """(a) Packages (and top-level modules) never import each other in a circle."""
    _fail("no import circle between packages", circles_between_units(edges))


def test_no_circle_inside_a_package(edges: list[Edge]) -> None:
    """(a) Modules of one package never import each other in a circle (re-exports aside)."""
    _fail(
        "no import circle between the modules of one package",
        circles_inside_units(
            edges, [m for m, p in module_files(SRC).items() if p.name == "__init__.py"]
        ),
    )


def test_optional_dependencies_are_lazy() -> None:
    """At module level celltwin imports only the standard library and its required dependencies.

    Optional dependencies (extras such as ``chem`` and ``peers``) are imported inside the
    functions that need them, so ``import celltwin.<package>`` works without them installed.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = set()
    for spec in project["dependencies"]:
        dist = spec.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            dist = dist.split(sep)[0]
        required.add(_IMPORT_NAMES.get(dist, dist.replace("-", "_")))
    allowed = required | set(sys.stdlib_module_names)
    found = [
        f"{path.relative_to(ROOT)}:{line}: module-level import of {name!r}, which is not a "
        "required dependency. Fix: import it inside the function that needs it, with an "
        "ImportError that says which extra to install."
        for path, line, name, module_level in external_imports()
        if module_level and name not in allowed
    ]
    _fail("optional dependencies are imported lazily", found)


# --- the checker checks itself on a small tree ----------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "pkg"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_graph_sees_imports_in_functions_and_type_checking(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "_keys.py": "",
            "low/__init__.py": "from ._a import f\n",
            "low/_a.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..high import Thing\n"
                "def f():\n    from pkg.high._b import g\n    return g\n"
            ),
            "high/__init__.py": "from ._b import g, Thing\nfrom .. import _keys\n",
            "high/_b.py": "from ..low import f\nclass Thing: ...\ndef g(): ...\n",
        },
    )
    got = {
        (e.source, e.target, e.name, e.type_checking, e.in_function)
        for e in import_edges(src, "pkg")
    }
    assert ("pkg.low._a", "pkg.high", "Thing", True, False) in got
    assert ("pkg.low._a", "pkg.high._b", "g", False, True) in got
    assert ("pkg.high", "pkg._keys", None, False, False) in got
    assert ("pkg.high._b", "pkg.low", "f", False, False) in got
    floors = (("_keys",), ("low",), ("high",))
    edges = import_edges(src, "pkg")
    upward = floor_violations(edges, floors=floors, same_floor=frozenset())
    assert len(upward) == 2, upward  # the TYPE_CHECKING one and the one inside f
    assert any("pkg.low._a imports pkg.high._b.g" in m for m in privacy_violations(edges))
    circles = circles_between_units(edges)
    assert len(circles) == 1, circles
    assert circles[0].startswith("circle among high, low"), circles


def test_circles_inside_a_package_skip_only_the_init_re_exports(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "from ._a import f\nfrom ._c import h\n",
            "low/_a.py": "def f(): ...\n",
            "low/_c.py": "from . import f\ndef h(): ...\n",  # through the __init__: allowed
            "low/_d.py": "def d():\n    from ._e import e\n",
            "low/_e.py": "from ._d import d\ndef e(): ...\n",
            "low/_t.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._u import U\n",
            "low/_u.py": "from ._t import TYPE_CHECKING\nclass U: ...\n",  # type-only circle
        },
    )
    edges = import_edges(src, "pkg")
    packages = [m for m, p in module_files(src, "pkg").items() if p.name == "__init__.py"]
    circles = circles_inside_units(edges, packages)
    assert len(circles) == 1, circles
    assert circles[0].startswith("circle among pkg.low._d, pkg.low._e"), circles
    assert "[inside a function]" in circles[0]
