"""What the peer adapters share: lazy imports, quiet runs, seeds, threads and flat weights.

The peers are other groups' models (Arc Institute's State, scGen) run inside celltwin's
:class:`~celltwin.models.Model` contract. Their packages are optional (``celltwin[peers]``) and
imported only when an adapter fits or predicts, never when celltwin is imported.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import random
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Final

import numpy as np
import pandas as pd

from ..._keys import CONTROL, DOSE, PERTURBATION
from .._errors import ModelFormatError

#: How to install the peers' packages (the ``peers`` extra of celltwin).
INSTALL_HINT: Final = "pip install 'celltwin[peers]'"
#: Loggers of the peers' stacks, silenced unless ``verbose=True``.
_LOGGERS: Final = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "pytorch_lightning",
    "scvi",
    "scgen",
    "cell_load",
    "state",
)
#: dtypes a peer's state dict may hold; all are exact in float64 (integers up to 2**53).
_DTYPES: Final = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool")


def import_peer(module: str, *, model: str) -> ModuleType:
    """Import one of a peer's packages, or raise ImportError saying what to install."""
    try:
        # Some peers change the global warning filters on import (cell_load calls
        # warnings.filterwarnings("ignore")); keep that from leaking into the caller.
        with warnings.catch_warnings():
            return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"the {model!r} model needs the optional package {module.split('.')[0]!r}, which "
            f"could not be imported ({err}). Fix: {INSTALL_HINT}."
        ) from err


def resolve_device(device: str, *, model: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; check the others."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"{model}: 'device' must be 'auto', 'cpu' or 'cuda' (got {device!r}).")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{model}: device='cuda' but torch sees no GPU. Fix: device='auto' or 'cpu'."
        )
    return device


@contextlib.contextmanager
def quiet(verbose: bool) -> Iterator[None]:
    """Silence the peers' warnings, loggers and prints (stdout and stderr) inside the block.

    Their training stacks (Lightning, scvi-tools, transformers) print model summaries and emit
    warnings celltwin cannot act on; ``verbose=True`` shows everything. What was printed is
    passed on to stderr when the block fails, so errors keep their context.
    """
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    captured = io.StringIO()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
        ):
            warnings.simplefilter("ignore")
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue()[-5000:])
        raise
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def seeded(seed: int, *, n_threads: int | None) -> Iterator[None]:
    """Seed Python's, numpy's and torch's global generators, restoring them afterwards.

    The peers draw from the global generators (cell-load's sampler uses ``np.random``); the
    caller's random state is left as it was. ``n_threads`` sets torch's CPU threads for the block:
    on a busy machine small models run many times faster on one thread than on several.
    """
    import torch

    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - restored below
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002 - the peers read the global generator
        torch.manual_seed(seed)
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002


def check_n_threads(n_threads: int | None, *, model: str) -> None:
    if n_threads is not None and (isinstance(n_threads, bool) or int(n_threads) < 1):
        raise ValueError(f"{model}: 'n_threads' must be None or >= 1 (got {n_threads!r}).")


def check_positive(params: dict[str, Any], *, model: str) -> None:
    """Raise ValueError naming the first parameter that is not a whole number >= 1."""
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{model}: {key!r} must be a whole number >= 1 (got {value!r}).")


# --- weights: a torch state dict <-> one flat float64 array + a JSON manifest ------------------


def pack_state_dict(state: dict[str, Any]) -> tuple[np.ndarray, list[list[Any]]]:
    """Flatten a torch state dict into one float64 vector and a ``[name, shape, dtype]`` list.

    celltwin's model files hold float64 arrays (safetensors) and JSON; every dtype a peer's
    network uses converts to float64 and back exactly.
    """
    manifest: list[list[Any]] = []
    parts: list[np.ndarray] = []
    for name, tensor in state.items():
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise TypeError(
                f"cannot store tensor {name!r} of dtype {dtype} (supported: {_DTYPES})."
            )
        manifest.append([str(name), [int(n) for n in tensor.shape], dtype])
        parts.append(tensor.detach().cpu().reshape(-1).double().numpy())
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
    return flat, manifest


def unpack_state_dict(flat: np.ndarray, manifest: list[list[Any]]) -> dict[str, Any]:
    """Inverse of :func:`pack_state_dict`; raise :class:`ModelFormatError` when they disagree."""
    import torch

    check_manifest(manifest, size=int(np.asarray(flat).size))
    state: dict[str, Any] = {}
    offset = 0
    values = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float64))
    for name, shape, dtype in manifest:
        n = int(np.prod(shape, dtype=np.int64))
        state[name] = values[offset : offset + n].reshape(shape).to(getattr(torch, dtype)).clone()
        offset += n
    return state


def check_manifest(manifest: Any, *, size: int) -> None:
    """Raise :class:`ModelFormatError` unless ``manifest`` describes exactly ``size`` values."""
    if not isinstance(manifest, list):
        raise ModelFormatError("the weights manifest must be a list of [name, shape, dtype].")
    total = 0
    for entry in manifest:
        ok = (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry[1])
            and entry[2] in _DTYPES
        )
        if not ok:
            raise ModelFormatError(f"bad weights manifest entry {entry!r}.")
        total += int(np.prod(entry[1], dtype=np.int64))
    if total != size:
        raise ModelFormatError(
            f"the weights manifest describes {total} values but the weights hold {size}."
        )


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def condition_label(perturbation: str, dose: str) -> str:
    """One label per (perturbation, dose): the peers treat each as its own category."""
    return perturbation if not dose else f"{perturbation}@{dose}"


def peer_labels(obs: pd.DataFrame) -> np.ndarray:
    """The peers' perturbation label per cell: the canonical label (with ``@dose`` when dosed)."""
    return np.array(
        [
            CONTROL if p == CONTROL else condition_label(p, d)
            for p, d in zip(obs[PERTURBATION], obs[DOSE], strict=True)
        ],
        dtype=object,
    )
