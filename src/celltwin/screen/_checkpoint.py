"""A screen's checkpoint folder: the rows of every finished batch and the current top hits.

Layout (no pickle): ``manifest.json`` (what screen wrote it, how many batches are done),
``batch-NNNNN.parquet`` (the scored and refused rows of batch ``NNNNN``) and
``top-NNNNN.npz`` (labels, effects and bounds of the best rows after that batch). The manifest
is written last, so a screen stopped mid-batch resumes after the last batch it finished; the
batches are the same as in an uninterrupted run (same candidates, same ``batch_size``), so a
resumed screen equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MANIFEST = "manifest.json"


@dataclass
class Top:
    """The best rows so far, best first: labels, scores, effects and effect bounds."""

    labels: list[str]
    scores: np.ndarray
    effects: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of what makes two screens the same (candidates, objective, settings)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Checkpoint:
    """Reads and writes one screen's checkpoint folder."""

    def __init__(self, path: str | os.PathLike[str], key: str) -> None:
        self.path = Path(path)
        self.key = key
        manifest = self.path / MANIFEST
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(
                f"checkpoint {str(self.path)!r} is a file. Fix: give a folder path (--resume "
                "uses OUT/checkpoint)."
            )
        if manifest.is_file():
            meta = json.loads(manifest.read_text())
            if meta.get("key") != key:
                raise ValueError(
                    f"checkpoint {str(self.path)!r} was written by a different screen (other "
                    "candidates, objective, context or settings). Fix: give another checkpoint "
                    "folder, or delete this one to start over."
                )
            self.done = int(meta["batches"])
        else:
            if self.path.is_dir() and any(self.path.iterdir()):
                raise ValueError(
                    f"checkpoint folder {str(self.path)!r} is not empty and holds no "
                    f"{MANIFEST}. Fix: give an empty or new folder."
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self.done = 0

    def rows(self) -> list[pd.DataFrame]:
        """The rows of every finished batch, in order."""
        return [pd.read_parquet(self.path / f"batch-{b:05d}.parquet") for b in range(self.done)]

    def top(self) -> Top | None:
        """The best rows after the last finished batch (``None`` before the first)."""
        if self.done == 0:
            return None
        with np.load(self.path / f"top-{self.done - 1:05d}.npz", allow_pickle=False) as f:
            return Top(
                [str(x) for x in f["labels"]], f["scores"], f["effects"], f["lower"], f["upper"]
            )

    def save(self, batch: int, rows: pd.DataFrame, top: Top) -> None:
        """Write batch ``batch``'s rows and the top hits after it, then mark it done."""
        rows.to_parquet(self.path / f"batch-{batch:05d}.parquet", index=False)
        np.savez(
            self.path / f"top-{batch:05d}.npz",
            labels=np.asarray(top.labels, dtype=str),
            scores=top.scores,
            effects=top.effects,
            lower=top.lower,
            upper=top.upper,
        )
        _write_json(self.path / MANIFEST, {"key": self.key, "batches": batch + 1})
        self.done = batch + 1
        old = self.path / f"top-{batch - 1:05d}.npz"
        old.unlink(missing_ok=True)


def _write_json(dest: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, dest)
