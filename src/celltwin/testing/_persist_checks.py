"""Checks of saving and loading, for every kind of model: round trip and damaged directories."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..models import (
    MODELS,
    ControlBaseline,
    MeanBaseline,
    MeanOtherContexts,
    MeanOtherPerturbations,
    Model,
    ModelFormatError,
    load,
)
from ._common import expect, expect_raises, fitted, predict_seen

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"


def _registered(model: Model) -> bool:
    spec = MODELS.get(model.name)
    return spec is not None and spec.cls is type(model)


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def check_save_load_round_trip(model: Model) -> None:
    """Saved and loaded (by its class, and by :func:`celltwin.models.load` when registered),
    the model predicts exactly the same; another class refuses the directory."""
    model = fitted(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        model.save(path)
        files = sorted(p.name for p in path.iterdir())
        expect(files == [MODEL_FILE, WEIGHTS_FILE], f"saved files {files}")
        expected = predict_seen(model)
        loaders: list[Callable[[Path], Model]] = [type(model).load]
        if _registered(model):
            loaders.append(load)
        for loader in loaders:
            again = loader(path)
            expect(type(again) is type(model), f"{loader} returned a {type(again).__name__}")
            # Parameters are saved as JSON: a tuple comes back as a list of the same values.
            same = _as_json(again.get_params()) == _as_json(model.get_params())
            expect(same, f"parameters changed by save/load: {again.get_params()}")
            np.testing.assert_array_equal(predict_seen(again).X, expected.X)
        candidates = (ControlBaseline, MeanBaseline, MeanOtherContexts, MeanOtherPerturbations)
        other = next(c for c in candidates if not issubclass(type(model), c))
        with expect_raises(ModelFormatError, "not a", what=f"{other.__name__}.load"):
            other.load(path)


# --- damaged directories ----------------------------------------------------------------------


def _metadata_checksum(meta: dict[str, Any]) -> str:
    # The documented format (celltwin.models save): SHA-256 of the metadata without its
    # checksum, as canonical JSON. Written out here so the check tests the format, not itself.
    body = {k: v for k, v in meta.items() if k != "metadata_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _edit_json(directory: Path, edit: Callable[[dict[str, Any]], object], *, reseal: bool) -> None:
    """Edit model.json; ``reseal`` updates its checksum, to reach the checks behind it."""
    meta = json.loads((directory / MODEL_FILE).read_text())
    edit(meta)
    if reseal:
        meta["metadata_sha256"] = _metadata_checksum(meta)
    (directory / MODEL_FILE).write_text(json.dumps(meta))


def _swap_two_genes(meta: dict[str, Any]) -> None:
    meta["genes"][0], meta["genes"][1] = meta["genes"][1], meta["genes"][0]


def _set_first_shape(meta: dict[str, Any]) -> None:
    next(iter(meta["weights"]["arrays"].values()))["shape"] = [1, 1]


def _rewrite(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        (directory / name).write_bytes(change((directory / name).read_bytes()))

    return tamper


def _json(
    edit: Callable[[dict[str, Any]], object], *, reseal: bool = True
) -> Callable[[Path], None]:
    return lambda directory: _edit_json(directory, edit, reseal=reseal)


#: Damage done to a saved directory, and what the ModelFormatError must say. Edits of
#: model.json are resealed (checksum updated) unless the case is about the checksum.
TAMPERING: dict[str, tuple[Callable[[Path], object], str]] = {
    "json_genes_swapped": (
        _json(_swap_two_genes, reseal=False),
        "model.json does not match its checksum",
    ),
    "json_edited": (
        _json(lambda m: m.__setitem__("celltwin_version", "9"), reseal=False),
        "edited by hand or damaged",
    ),
    "json_syntax": (lambda d: (d / MODEL_FILE).write_text("{not json"), "not valid JSON"),
    "json_truncated": (_rewrite(MODEL_FILE, lambda b: b[:200]), "not valid JSON"),
    "json_missing": (lambda d: (d / MODEL_FILE).unlink(), "model.json is missing"),
    "weights_missing": (lambda d: (d / WEIGHTS_FILE).unlink(), "is missing"),
    "weights_truncated": (_rewrite(WEIGHTS_FILE, lambda b: b[: len(b) // 2]), "checksum mismatch"),
    "weights_flipped_byte": (
        _rewrite(WEIGHTS_FILE, lambda b: b[:-1] + bytes([b[-1] ^ 1])),
        "checksum mismatch",
    ),
    "format_version": (
        _json(lambda m: m.__setitem__("format_version", 99)),
        "format version 99 is not supported",
    ),
    # celltwin.models.load knows the registered models; a class's load its subclasses.
    "unknown_model": (
        _json(lambda m: m.__setitem__("model", "deep_magic")),
        "unknown model 'deep_magic'|holds a 'deep_magic' model, not a",
    ),
    "unknown_param": (_json(lambda m: m["params"].__setitem__("bogus", 1)), "do not fit"),
    "weights_path": (
        _json(lambda m: m["weights"].__setitem__("file", "../elsewhere")),
        "weights file must be",
    ),
    "genes_shape": (_json(lambda m: m.__setitem__("genes", m["genes"][:-1])), "shape mismatch"),
    "declared_shape": (_json(_set_first_shape), "shape mismatch"),
}
#: Cases that need at least one saved array (a model without arrays has no shape to break).
_NEEDS_ARRAYS = ("genes_shape", "declared_shape")


# A pickle that would create a file if anything unpickled it (protocol 0, written out by hand so
# no pickle module is needed): os.system("touch <marker>").
def _pickle_payload(marker: Path) -> bytes:
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


def check_damaged_directories_fail_clearly(model: Model) -> None:
    """Every kind of damage (:data:`TAMPERING`) raises :class:`ModelFormatError` saying what
    (loaded with :func:`celltwin.models.load` when registered, else by the model's class)."""
    model = fitted(model)
    loader = load if _registered(model) else type(model).load
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved"
        model.save(saved)
        has_arrays = bool(json.loads((saved / MODEL_FILE).read_text())["weights"]["arrays"])
        for case, (tamper, message) in TAMPERING.items():
            if case in _NEEDS_ARRAYS and not has_arrays:
                continue
            directory = Path(tmp) / case
            shutil.copytree(saved, directory)
            tamper(directory)
            with expect_raises(ModelFormatError, message, what=f"load after {case}"):
                loader(directory)


def check_loading_never_runs_code(model: Model) -> None:
    """A pickle in place of the weights (with a matching checksum) is refused, never run."""
    model = fitted(model)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "model"
        model.save(directory)
        marker = Path(tmp) / "pwned"
        (directory / WEIGHTS_FILE).write_bytes(_pickle_payload(marker))
        digest = hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()
        _edit_json(directory, lambda m: m["weights"].__setitem__("sha256", digest), reseal=True)
        what = "load of a pickle"
        with expect_raises(ModelFormatError, "not a readable safetensors file", what=what):
            type(model).load(directory)
        expect(not marker.exists(), "loading ran the pickle")
        with expect_raises(FileNotFoundError, "no model directory", what="load of nothing"):
            type(model).load(Path(tmp) / "nowhere")


PERSIST_CHECKS = (
    check_save_load_round_trip,
    check_damaged_directories_fail_clearly,
    check_loading_never_runs_code,
)
