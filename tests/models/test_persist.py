"""One persistence for every kind of model: model.json is covered by its checksum, no model
class is needed to read a directory, and directories of format version 1 still load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from celltwin.models import ModelFormatError, get_model, load
from celltwin.testing._data import cell_data, signature_data

MODELS_DIR = Path(__file__).parents[2] / "src" / "celltwin" / "models"


def _saved(tmp_path: Path, name: str) -> Path:
    model = get_model(name)
    if model.predicts == "signatures":
        model.fit(signature_data().scores)
    else:
        model.fit(cell_data().adata)
    model.save(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("name", ["linear", "low_rank"])
def test_swapping_two_gene_names_in_model_json_is_refused(tmp_path: Path, name: str) -> None:
    directory = _saved(tmp_path, name)
    meta = json.loads((directory / "model.json").read_text())
    meta["genes"][0], meta["genes"][1] = meta["genes"][1], meta["genes"][0]
    (directory / "model.json").write_text(json.dumps(meta, indent=1))
    with pytest.raises(ModelFormatError) as info:
        load(directory)
    message = str(info.value)
    assert str(directory) in message and "model.json does not match its checksum" in message
    assert "Fix: save the model again" in message


@pytest.mark.parametrize("name", ["mean", "linear", "low_rank", "signature_factor"])
def test_directories_of_format_version_1_still_load(tmp_path: Path, name: str) -> None:
    """Version 1 (before the metadata checksum): no ``metadata_sha256`` and ``predicts``;
    signature models had their own format name."""
    directory = _saved(tmp_path, name)
    model = load(directory)
    meta = json.loads((directory / "model.json").read_text())
    del meta["metadata_sha256"], meta["predicts"]
    meta["format_version"] = 1
    if model.predicts == "signatures":
        meta["format"] = "celltwin.signature_model"
    (directory / "model.json").write_text(json.dumps(meta, indent=1))
    with pytest.warns(UserWarning, match="no checksum of model.json"):
        old = load(directory)
    assert type(old) is type(model) and old.genes_ == model.genes_
    for attr in model._array_names():
        np.testing.assert_array_equal(getattr(old, attr), getattr(model, attr))
    # A version-2 file must carry its checksum: deleting it is an edit like any other.
    meta["format_version"] = 2
    meta["format"] = "celltwin.model"
    (directory / "model.json").write_text(json.dumps(meta, indent=1))
    with pytest.raises(ModelFormatError, match="does not match its checksum"):
        load(directory)


def _imports(path: Path) -> set[str]:
    """Modules of celltwin.models a module imports, at any depth of its code (relative)."""
    package = ".".join(path.relative_to(MODELS_DIR.parent).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(MODELS_DIR.parent).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
            if target.startswith("models"):
                found.add(target)
    return found


def test_no_import_circle_in_models_even_inside_functions() -> None:
    modules = {}
    for path in MODELS_DIR.rglob("*.py"):
        parts = path.relative_to(MODELS_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = {m for m in _imports(path)}
    # Resolve "package.name" imports to the module or package they name.
    graph = {m: {t for t in targets if t in modules and t != m} for m, targets in modules.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*trail, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    # The package __init__ imports everything by design; circles among the modules are bugs.
    cycles = [c for m in graph if m != "models" and (c := cycle_from(m)) and "models" not in c]
    assert not cycles, cycles[0]
    assert "models._registry" not in graph["models._persist"]
    assert "models._registry" not in graph["models._model"]
