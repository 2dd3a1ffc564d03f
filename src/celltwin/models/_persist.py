"""Saving and loading models: arrays in safetensors, everything else in JSON, never pickle.

One persistence for every kind of model (cells, pseudobulk, signatures). A model directory
holds two files:

``model.json``
    ``format`` (``"celltwin.model"``), ``format_version``, ``model`` (registry name),
    ``predicts``, ``params``, ``celltwin_version``, what the model's kind records of its
    training data (:meth:`Model._fitted_meta`: e.g. the training ``genes``, ``contexts`` and
    ``conditions``, or the signature ``pairs``), the model's JSON ``state``, ``weights`` (the
    weights file name, its SHA-256 and the name, shape and dtype of every array) and
    ``metadata_sha256``: the SHA-256 of all of the above in canonical JSON.
``weights.safetensors``
    The fitted arrays.

Loading checks all of it before building the model: the weights against their checksum and
declared shapes, and ``model.json`` against its own checksum, so a damaged, truncated or edited
directory (even two gene names swapped in ``model.json``) fails with :class:`ModelFormatError`
instead of yielding a wrong model; neither file format can run code. Directories written before
the metadata checksum (format version 1, cell and signature models alike) still load.

This module knows no model class: :func:`read_model` is handed the function that turns the
saved model name into its class (the registry's, or a class's own subclasses).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .._output import check_output
from .._version import __version__
from ._errors import ModelFormatError

FORMAT: Final = "celltwin.model"
FORMAT_VERSION: Final = 2
#: Formats of directories written by earlier celltwin versions, still read (no metadata sum).
LEGACY_FORMATS: Final[dict[int, tuple[str, ...]]] = {
    1: ("celltwin.model", "celltwin.signature_model")
}
MODEL_FILE: Final = "model.json"
WEIGHTS_FILE: Final = "weights.safetensors"
CHECKSUM_KEY: Final = "metadata_sha256"


class Persistable(Protocol):
    """What persistence needs of a model (every :class:`Model` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def predicts(self) -> str: ...

    def __init__(self, **params: Any) -> None: ...
    def get_params(self) -> dict[str, Any]: ...
    def _check_fitted(self) -> None: ...
    def _array_names(self) -> tuple[str, ...]: ...
    def _json_names(self) -> tuple[str, ...]: ...
    def _fitted_meta(self) -> dict[str, Any]: ...
    def _restore_fitted(self, meta: dict[str, Any]) -> None: ...
    def _check_state(self) -> None: ...


M = TypeVar("M", bound=Persistable)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_checksum(meta: dict[str, Any]) -> str:
    """SHA-256 of ``meta`` without its checksum field, in canonical JSON (sorted keys)."""
    body = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_model(model: Persistable, path: Path, *, overwrite: bool = False) -> None:
    """Write ``model`` to the directory ``path`` (see the module docstring).

    An existing non-empty ``path`` is refused (:class:`FileExistsError`, nothing written)
    unless ``overwrite``: then the model's two files are replaced.
    """
    model._check_fitted()
    check_output(path, overwrite=overwrite, kind="folder", what="model folder")
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
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "predicts": model.predicts,
        "params": params,
        "celltwin_version": __version__,
        **model._fitted_meta(),
        "state": {name: getattr(model, name) for name in model._json_names()},
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": _sha256(weights),
            "arrays": {
                name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()
            },
        },
    }
    meta[CHECKSUM_KEY] = metadata_checksum(meta)
    _write_atomic(path / MODEL_FILE, json.dumps(meta, indent=1, allow_nan=False).encode("utf-8"))


def _fail(path: Path, problem: str) -> ModelFormatError:
    fix = (
        ""
        if "Fix:" in problem
        else " Fix: save the model again (model.save(dir)) or restore the directory."
    )
    return ModelFormatError(f"cannot load the model in {path}: {problem}.{fix}")


def get_field(meta: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``meta[key]`` when it is a ``kind``; else :class:`ModelFormatError` naming the field."""
    value = meta.get(key)
    if not isinstance(value, kind):
        raise ModelFormatError(f"model.json field {key!r} is missing or of the wrong type")
    return value


def str_list(value: Any, key: str) -> list[str]:
    """``value`` when it is a list of strings; else :class:`ModelFormatError` naming ``key``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelFormatError(f"model.json field {key!r} must be a list of strings")
    return value


def read_model(path: str | os.PathLike[str], resolve: Callable[[str], type[M]]) -> M:
    """Load the model saved in ``path``; ``resolve(name)`` gives the class of a saved name.

    ``resolve`` raises :class:`ModelFormatError` (or :class:`KeyError`) for a name it does not
    know. Every problem is reported as :class:`ModelFormatError` naming the directory.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a directory.
    ModelFormatError
        When ``model.json`` or the weights are missing, not valid, of another format version,
        fail their checksum, or do not fit together (names, shapes).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no model directory at {path}. Fix: pass the folder given to save()."
        )
    try:
        meta = _read_meta(path)
        name = get_field(meta, "model", str)
        try:
            cls = resolve(name)
        except KeyError as err:
            raise ModelFormatError(str(err.args[0]) if err.args else name) from None
        arrays = _load_weights(path, get_field(meta, "weights", dict))
        return _build(cls, name, meta, arrays)
    except ModelFormatError as err:
        raise _fail(path, str(err)) from None


def _read_meta(path: Path) -> dict[str, Any]:
    """``model.json``, checked for format, version and (from version 2) its checksum."""
    meta_path = path / MODEL_FILE
    if not meta_path.is_file():
        raise ModelFormatError(f"{MODEL_FILE} is missing (not a celltwin model directory)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(
            f"{MODEL_FILE} is not valid JSON ({err}); it is damaged or truncated"
        ) from None
    formats = (FORMAT, *(f for fs in LEGACY_FORMATS.values() for f in fs))
    if not isinstance(meta, dict) or meta.get("format") not in formats:
        raise ModelFormatError(f"{MODEL_FILE} is not a {FORMAT!r} file")
    version = meta.get("format_version")
    legacy = LEGACY_FORMATS.get(version, ()) if isinstance(version, int) else ()
    if version != FORMAT_VERSION and meta["format"] not in legacy:
        raise ModelFormatError(
            f"format version {version!r} is not supported (this celltwin "
            f"{__version__} reads version {FORMAT_VERSION})"
        )
    if version != FORMAT_VERSION:
        # A legacy file loads, but nothing vouches for its metadata: say so every time.
        warnings.warn(
            f"{meta_path}: model format version {version} has no checksum of {MODEL_FILE}, so an "
            "edit of it (e.g. two gene names swapped) cannot be detected. Fix: load it with a "
            "celltwin you trust and save it again (model.save(path, overwrite=True), format "
            f"version {FORMAT_VERSION})",
            UserWarning,
            stacklevel=4,
        )
    else:
        recorded = meta.get(CHECKSUM_KEY)
        actual = metadata_checksum(meta)
        if recorded != actual:
            raise ModelFormatError(
                f"{MODEL_FILE} does not match its checksum (sha256 {actual[:12]}..., recorded "
                f"{str(recorded)[:12]}...): it was edited by hand or damaged. model.json is "
                "written by model.save() only; edit the model's parameters in Python instead"
            )
    return meta


def _build(cls: type[M], name: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> M:
    params = get_field(meta, "params", dict)
    try:
        model = cls(**params)
    except TypeError as err:
        raise ModelFormatError(f"parameters {params!r} do not fit {name!r} ({err})") from None
    model._restore_fitted(meta)
    state = get_field(meta, "state", dict)
    expected_state = set(model._json_names())
    if set(state) != expected_state:
        raise ModelFormatError(f"state fields {sorted(state)} != expected {sorted(expected_state)}")
    for key, value in state.items():
        setattr(model, key, value)
    expected = set(model._array_names())
    if set(arrays) != expected:
        raise ModelFormatError(f"weights hold arrays {sorted(arrays)}, expected {sorted(expected)}")
    for key, value in arrays.items():
        setattr(model, key, value)
    try:
        model._check_state()
    except ModelFormatError:
        raise
    except (TypeError, ValueError, AttributeError, IndexError) as err:
        raise ModelFormatError(f"inconsistent state ({err})") from None
    return model


def _load_weights(path: Path, weights: dict[str, Any]) -> dict[str, np.ndarray]:
    # Only the fixed file name is accepted, so an edited model.json cannot point elsewhere.
    if weights.get("file") != WEIGHTS_FILE:
        raise ModelFormatError(
            f"weights file must be {WEIGHTS_FILE!r} (got {weights.get('file')!r})"
        )
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise ModelFormatError(f"{WEIGHTS_FILE} is missing")
    expected_sha = weights.get("sha256")
    actual_sha = _sha256(file)
    if actual_sha != expected_sha:
        raise ModelFormatError(
            f"checksum mismatch for {WEIGHTS_FILE} (sha256 {actual_sha[:12]}..., model.json "
            f"records {str(expected_sha)[:12]}...): the file is truncated, damaged or replaced"
        )
    try:
        arrays = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFormatError(
            f"{WEIGHTS_FILE} is not a readable safetensors file ({err})"
        ) from None
    declared = weights.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(arrays):
        raise ModelFormatError(
            f"model.json declares arrays {declared!r}, file holds {sorted(arrays)}"
        )
    for name, array in arrays.items():
        entry = declared[name]
        if not isinstance(entry, dict) or entry.get("shape") != list(array.shape):
            raise ModelFormatError(
                f"shape mismatch for array {name!r}: file has {list(array.shape)}, "
                f"model.json declares {entry!r}"
            )
        if entry.get("dtype") != str(array.dtype):
            raise ModelFormatError(f"dtype mismatch for array {name!r}: {array.dtype} vs {entry!r}")
    return arrays
