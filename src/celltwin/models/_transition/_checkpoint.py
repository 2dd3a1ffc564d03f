"""Checkpoints of the ensemble: each finished member's weights, flattened, in a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from .._errors import ModelFormatError

_CHECKPOINT_FILE: Final = "checkpoint.json"


def get_flat(module: torch.nn.Module) -> np.ndarray:
    return np.concatenate(
        [v.detach().cpu().double().numpy().ravel() for v in module.state_dict().values()]
    )


def set_flat(module: torch.nn.Module, flat: np.ndarray, device: torch.device) -> None:
    state = module.state_dict()
    offset = 0
    new = {}
    for k, v in state.items():
        n = v.numel()
        chunk = np.asarray(flat[offset : offset + n]).reshape(tuple(v.shape))
        new[k] = torch.as_tensor(chunk, dtype=v.dtype, device=device)
        offset += n
    if offset != len(flat):
        raise ModelFormatError(
            f"transition: saved weights hold {len(flat)} numbers, the network needs {offset}."
        )
    module.load_state_dict(new)


class Checkpoint:
    """Finished ensemble members in a folder: ``member_<i>.safetensors`` + ``checkpoint.json``."""

    def __init__(self, folder: str | os.PathLike[str], fingerprint: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        meta_path = self.folder / _CHECKPOINT_FILE
        self.meta: dict[str, Any] = {"fingerprint": fingerprint, "members": {}}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                meta = {}
            if isinstance(meta, dict) and meta.get("fingerprint") == fingerprint:
                self.meta = meta

    def load(self, member: int) -> tuple[np.ndarray, dict[str, Any]] | None:
        record = self.meta["members"].get(str(member))
        file = self.folder / f"member_{member}.safetensors"
        if record is None or not file.is_file():
            return None
        try:
            flat = load_file(str(file))["weights"]
        except Exception:  # a damaged checkpoint is retrained, never trusted
            return None
        return np.asarray(flat, dtype=np.float64), record

    def save(self, member: int, flat: np.ndarray, record: dict[str, Any]) -> None:
        file = self.folder / f"member_{member}.safetensors"
        tmp = file.with_name(file.name + ".tmp")
        save_file({"weights": np.ascontiguousarray(flat)}, str(tmp))
        os.replace(tmp, file)
        self.meta["members"][str(member)] = record
        meta_tmp = self.folder / (_CHECKPOINT_FILE + ".tmp")
        meta_tmp.write_text(json.dumps(self.meta, indent=1), encoding="utf-8")
        os.replace(meta_tmp, self.folder / _CHECKPOINT_FILE)
