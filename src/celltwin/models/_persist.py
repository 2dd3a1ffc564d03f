"""Saving and loading models: arrays in safetensors, everything else in JSON, never pickle.

A model directory holds two files:

``model.json``
    ``format`` (``"celltwin.model"``), ``format_version``, ``model`` (registry name),
    ``params``, ``celltwin_version``, the training ``genes``, ``contexts``, ``conditions``,
    ``perturbation_types``, ``n_train_cells``, the model's JSON ``state`` and ``weights``:
    the weights file name, its SHA-256 and the name, shape and dtype of every array.
``weights.safetensors``
    The fitted arrays.

Loading checks all of it before building the model, so a damaged, truncated or edited
directory fails with :class:`ModelFormatError` instead of yielding a wrong model; neither file
format can run code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .. import __version__
from .._keys import CONTEXT, DOSE, PERTURBATION
from ._base import N_CELLS, Model, ModelFormatError

FORMAT: Final = "celltwin.model"
FORMAT_VERSION: Final = 1
MODEL_FILE: Final = "model.json"
WEIGHTS_FILE: Final = "weights.safetensors"
_CONDITION_COLUMNS: Final = (CONTEXT, PERTURBATION, DOSE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model(model: Model, path: Path) -> None:
    """Write ``model`` to the directory ``path`` (see the module docstring)."""
    model._check_fitted()
    params = model.get_params()
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{model.name}: parameters {params!r} cannot be written as JSON ({err}). "
            "Fix: use plain numbers, strings, lists and dicts as parameters."
        ) from None
    path.mkdir(parents=True, exist_ok=True)
    arrays = {
        name: np.ascontiguousarray(getattr(model, name), dtype=np.float64)
        for name in model._array_names()
    }
    weights = path / WEIGHTS_FILE
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(arrays, str(tmp))
    os.replace(tmp, weights)
    conditions = model.conditions_
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "params": params,
        "celltwin_version": __version__,
        "genes": list(model.genes_),
        "contexts": list(model.contexts_),
        "conditions": {
            **{c: [str(v) for v in conditions[c]] for c in _CONDITION_COLUMNS},
            N_CELLS: [int(v) for v in conditions[N_CELLS]],
        },
        "perturbation_types": dict(model.perturbation_types_),
        "n_train_cells": int(model.n_train_cells_),
        "state": {name: getattr(model, name) for name in model._json_names()},
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": _sha256(weights),
            "arrays": {
                name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()
            },
        },
    }
    _write_atomic(path / MODEL_FILE, json.dumps(meta, indent=1, allow_nan=False).encode("utf-8"))


def _fail(path: Path, problem: str) -> ModelFormatError:
    return ModelFormatError(
        f"cannot load the model in {path}: {problem}. Fix: save the model again "
        "(model.save(dir)) or restore the directory."
    )


def _get(meta: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = meta.get(key)
    if not isinstance(value, kind):
        raise _fail(path, f"model.json field {key!r} is missing or of the wrong type")
    return value


def _str_list(value: Any, key: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"model.json field {key!r} must be a list of strings")
    return value


def load(path: str | os.PathLike[str]) -> Model:
    """Load a model saved with :meth:`Model.save`, whichever registered model it is.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a directory.
    ModelFormatError
        When ``model.json`` or the weights are missing, not valid, of another format version,
        fail their checksum, or do not fit together (names, shapes).
    """
    from ._registry import MODELS

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no model directory at {path}. Fix: pass the folder given to save()."
        )
    meta_path = path / MODEL_FILE
    if not meta_path.is_file():
        raise _fail(path, f"{MODEL_FILE} is missing (not a celltwin model directory)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(
            path, f"{MODEL_FILE} is not valid JSON ({err}); it is damaged or truncated"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, f"{MODEL_FILE} is not a {FORMAT!r} file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {version!r} is not supported (this celltwin "
            f"{__version__} reads version {FORMAT_VERSION})",
        )
    name = _get(meta, "model", str, path)
    if name not in MODELS:
        raise _fail(path, f"unknown model {name!r} (registered: {sorted(MODELS)})")

    arrays = _load_weights(path, _get(meta, "weights", dict, path))

    params = _get(meta, "params", dict, path)
    try:
        model = MODELS[name].cls(**params)
    except TypeError as err:
        raise _fail(path, f"parameters {params!r} do not fit {name!r} ({err})") from None

    genes = _str_list(meta.get("genes"), "genes", path)
    if len(set(genes)) != len(genes):
        raise _fail(path, "the gene list has duplicates")
    model.genes_ = genes
    model.contexts_ = _str_list(meta.get("contexts"), "contexts", path)
    model.conditions_ = _conditions(_get(meta, "conditions", dict, path), path)
    types = _get(meta, "perturbation_types", dict, path)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in types.items()):
        raise _fail(path, "'perturbation_types' must map strings to strings")
    model.perturbation_types_ = types
    n_train = meta.get("n_train_cells")
    if not isinstance(n_train, int) or isinstance(n_train, bool) or n_train < 1:
        raise _fail(path, "'n_train_cells' must be a positive integer")
    model.n_train_cells_ = n_train

    state = _get(meta, "state", dict, path)
    if set(state) != set(model._json_names()):
        raise _fail(path, f"state fields {sorted(state)} != expected {sorted(model._json_names())}")
    for key, value in state.items():
        setattr(model, key, value)
    expected = set(model._array_names())
    if set(arrays) != expected:
        raise _fail(path, f"weights hold arrays {sorted(arrays)}, expected {sorted(expected)}")
    for key, value in arrays.items():
        setattr(model, key, value)
    try:
        model._check_state()
    except ModelFormatError:
        raise
    except (TypeError, ValueError, AttributeError, IndexError) as err:
        raise _fail(path, f"inconsistent state ({err})") from None
    return model


def _load_weights(path: Path, weights: dict[str, Any]) -> dict[str, np.ndarray]:
    # Only the fixed file name is accepted, so an edited model.json cannot point elsewhere.
    if weights.get("file") != WEIGHTS_FILE:
        raise _fail(path, f"weights file must be {WEIGHTS_FILE!r} (got {weights.get('file')!r})")
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise _fail(path, f"{WEIGHTS_FILE} is missing")
    expected_sha = weights.get("sha256")
    actual_sha = _sha256(file)
    if actual_sha != expected_sha:
        raise _fail(
            path,
            f"checksum mismatch for {WEIGHTS_FILE} (sha256 {actual_sha[:12]}..., model.json "
            f"records {str(expected_sha)[:12]}...): the file is truncated, damaged or replaced",
        )
    try:
        arrays = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise _fail(path, f"{WEIGHTS_FILE} is not a readable safetensors file ({err})") from None
    declared = weights.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(arrays):
        raise _fail(path, f"model.json declares arrays {declared!r}, file holds {sorted(arrays)}")
    for name, array in arrays.items():
        entry = declared[name]
        if not isinstance(entry, dict) or entry.get("shape") != list(array.shape):
            raise _fail(
                path,
                f"shape mismatch for array {name!r}: file has {list(array.shape)}, "
                f"model.json declares {entry!r}",
            )
        if entry.get("dtype") != str(array.dtype):
            raise _fail(path, f"dtype mismatch for array {name!r}: {array.dtype} vs {entry!r}")
    return arrays


def _conditions(raw: dict[str, Any], path: Path) -> pd.DataFrame:
    columns = {c: _str_list(raw.get(c), f"conditions.{c}", path) for c in _CONDITION_COLUMNS}
    counts = raw.get(N_CELLS)
    if not isinstance(counts, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts
    ):
        raise _fail(path, f"'conditions.{N_CELLS}' must be a list of integers")
    if len({len(v) for v in columns.values()} | {len(counts)}) != 1:
        raise _fail(path, "the 'conditions' columns differ in length")
    table = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()})
    table[N_CELLS] = np.asarray(counts, dtype=np.int64)
    return table
