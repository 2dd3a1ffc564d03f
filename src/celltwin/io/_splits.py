"""What a split stored in a file did: counts per split and per context, and the units held out.

A split made by :mod:`celltwin.split` lives in ``obs[key]`` (``train`` / ``val`` / ``test``) with
its parameters in ``uns['celltwin']['splits'][key]``. The counts are computed here, from obs, so
that the split functions store them and :func:`describe_split` (``celltwin info``, ``celltwin
split``) reports them the same way, also for files written before counts were stored.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN, UNS_KEY, VAL
from ._read import open_h5ad

#: The split labels, in order.
_LABELS = (TRAIN, VAL, TEST)
#: Widest context name printed in the table, and most contexts listed.
_NAME_WIDTH = 24
_MAX_CONTEXTS = 20
#: How to ask each strategy for a validation set (CLI flags, or Python where the CLI has none).
_ASK_FOR_VAL = {
    "perturbations": "--val NAMES or --val-fraction",
    "drugs": "--val DRUGS or --val-fraction",
    "combinations": "--val-fraction",
    "contexts": "--val CONTEXTS",
    "doses": "n_val= in Python: celltwin.split.split_doses",
}
#: Widths of the cells and perturbations columns.
_CELLS, _PERTS = 11, 8


def _strings(obs: pd.DataFrame, column: str) -> np.ndarray:
    return np.asarray(obs[column].astype(str), dtype=object)


def split_counts(obs: pd.DataFrame, *, key: str = SPLIT) -> dict[str, Any]:
    """Cells and perturbations per split label, in total and per context.

    Parameters
    ----------
    obs
        Canonical obs with a split in ``obs[key]``.
    key
        The split's obs column.

    Returns
    -------
    dict
        JSON-serialisable: ``n_cells`` and ``n_perturbations`` (distinct non-control
        perturbations) per label, ``n_control_cells``, and ``per_context``: parallel lists
        ``context``, ``control_cells``, ``<label>_cells`` and ``<label>_perturbations``
        (one entry per context, sorted; absent without ``obs['context']``).
    """
    labels = _strings(obs, key)
    perturbations = _strings(obs, PERTURBATION)
    control = perturbations == CONTROL
    out: dict[str, Any] = {
        "n_cells": {label: int(np.sum(labels == label)) for label in _LABELS},
        "n_perturbations": {
            label: len(set(perturbations[(labels == label) & ~control].tolist()))
            for label in _LABELS
        },
        "n_control_cells": int(control.sum()),
    }
    if CONTEXT not in obs.columns:
        return out
    frame = pd.DataFrame(
        {"context": _strings(obs, CONTEXT), "label": labels, "p": perturbations, "c": control}
    )
    contexts = sorted(set(frame["context"]))
    cells = frame.groupby(["context", "label"]).size().unstack(fill_value=0)
    perturbed = frame[~frame["c"]]
    n_perts = perturbed.groupby(["context", "label"])["p"].nunique().unstack(fill_value=0)
    controls = frame[frame["c"]].groupby("context").size()
    table: dict[str, list[Any]] = {
        "context": contexts,
        "control_cells": [int(controls.get(c, 0)) for c in contexts],
    }
    for label in _LABELS:
        for name, source in (("cells", cells), ("perturbations", n_perts)):
            column = source[label] if label in source.columns else pd.Series(dtype=int)
            table[f"{label}_{name}"] = [int(column.get(c, 0)) for c in contexts]
    out["per_context"] = table
    return out


@dataclass(frozen=True)
class SplitSummary:
    """A split stored in a file, described: how it was made and what each side holds."""

    #: obs column of the split.
    key: str
    #: Strategy (``perturbations``, ``contexts``, ...); ``None`` when no parameters are stored.
    strategy: str | None
    seed: int | None
    #: What is held out as a whole, per label (``test`` / ``val``): names in the data's terms.
    held_out: dict[str, list[str]]
    #: What the names of :attr:`held_out` are (``perturbations``, ``contexts``, ``drugs``, ...).
    held_out_kind: str
    #: The strategy's options as stored (fractions, few-shot, ...).
    options: dict[str, Any]
    #: Cells and distinct non-control perturbations per label; control cells (always train).
    n_cells: dict[str, int]
    n_perturbations: dict[str, int]
    n_control_cells: int
    #: Per-context counts (see :func:`split_counts`), empty without contexts.
    per_context: dict[str, list[Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict."""
        return asdict(self)

    def to_text(self) -> str:
        """A short report (at most 100 columns): what is held out, then counts per context."""
        how = f"{self.strategy}, seed {self.seed}" if self.strategy else "no stored parameters"
        lines = [f"split {self.key!r} ({how})"]
        for label in (TEST, VAL):
            lines.append(f"  {label:<5} {self._held_text(label)}")
        lines += _table(self.per_context, self.n_cells, self.n_perturbations)
        lines.append(
            f"  train includes the {self.n_control_cells:,} control cells (always train: "
            "predictions start from them)"
        )
        return "\n".join(lines)

    def _held_text(self, label: str) -> str:
        n_cells, n_perts = self.n_cells.get(label, 0), self.n_perturbations.get(label, 0)
        names = self.held_out.get(label, [])
        if not n_cells:
            if label == VAL:
                how = _ASK_FOR_VAL.get(self.strategy or "", "--val or --val-fraction")
                return f"none: no validation set (ask for one with {how})"
            return "none"
        kind = self.held_out_kind if len(names) != 1 else self.held_out_kind.removesuffix("s")
        text = f"{n_cells:,} cells"
        if self.held_out_kind != "perturbations":
            text += f" of {n_perts:,} perturbations"
        if names:
            text += f"; {len(names)} {kind}: "
            text += _names(names, width=max(8, 100 - len(f"  {label:<5} {text}") - 18))
        if label == VAL:
            text += (
                "\n        note: fit learns from train only; val is for tuning "
                "(score it with evaluate --split val)"
            )
        return text


def _names(names: list[str], *, width: int) -> str:
    """As many of ``names`` as fit in about ``width`` characters, then how many in all."""
    shown: list[str] = []
    for name in names:
        if shown and len(", ".join([*shown, name])) > width:
            break
        shown.append(name if len(name) <= width else name[: width - 3] + "...")
    more = f", ... ({len(names)} in all)" if len(shown) < len(names) else ""
    return ", ".join(shown) + more


def _table(
    per_context: dict[str, list[Any]], cells: dict[str, int], perts: dict[str, int]
) -> list[str]:
    """Counts per context and in all, one row each; val columns only when val holds cells."""
    labels = [label for label in _LABELS if label != VAL or cells.get(VAL, 0)]
    pad = " " * (2 + _NAME_WIDTH)
    rows = [
        pad + "".join(f"{label:>{_CELLS + _PERTS}}" for label in labels),
        f"  {'context':<{_NAME_WIDTH}}" + f"{'cells':>{_CELLS}}{'perts':>{_PERTS}}" * len(labels),
    ]

    def row(name: str, values: list[tuple[int, int]]) -> str:
        name = name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 3] + "..."
        return f"  {name:<{_NAME_WIDTH}}" + "".join(
            f"{c:>{_CELLS},}{p:>{_PERTS},}" for c, p in values
        )

    contexts = list(per_context.get("context", []))
    for i, context in enumerate(contexts[:_MAX_CONTEXTS]):
        values = [
            (per_context[f"{label}_cells"][i], per_context[f"{label}_perturbations"][i])
            for label in labels
        ]
        rows.append(row(str(context), values))
    if len(contexts) > _MAX_CONTEXTS:
        rows.append(f"  ... {len(contexts) - _MAX_CONTEXTS} more contexts")
    rows.append(row("all", [(cells.get(label, 0), perts.get(label, 0)) for label in labels]))
    return rows


def _plain(value: Any) -> Any:
    """Numpy containers read back from h5ad as plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [] if value.size == 0 else [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _held_out(params: dict[str, Any], label: str) -> tuple[list[str], str]:
    """The names held out for ``label`` and what they are, in the strategy's own terms."""
    strategy = params.get("strategy")
    if strategy == "contexts":
        return [str(c) for c in params.get(f"{label}_contexts", [])], "contexts"
    if strategy == "drugs":
        return [str(d) for d in params.get("held_out_components", {}).get(label, [])], "drugs"
    unit = [str(u) for u in params.get("unit", [PERTURBATION])]
    stored = params.get(label, {})
    columns = [[str(v) for v in stored.get(u, [])] for u in unit]
    names = [" @ ".join(parts) for parts in zip(*columns, strict=True)] if columns else []
    kind = "perturbations" if unit == [PERTURBATION] else "(" + ", ".join(unit) + ") units"
    return names, kind


def split_params(adata: AnnData) -> dict[str, dict[str, Any]]:
    """The parameters of every split stored in ``uns['celltwin']['splits']``, by obs column.

    Plain Python values, also for a file read back from ``.h5ad`` (where lists come back as
    numpy arrays and empty lists as empty float arrays).
    """
    stored = adata.uns.get(UNS_KEY, {}).get("splits", {})
    return {str(k): _plain(v) for k, v in stored.items()}


def describe_split(adata: AnnData | str | os.PathLike[str], *, key: str = SPLIT) -> SplitSummary:
    """Describe the split stored in ``obs[key]``: strategy, seed, held-out units, counts.

    Parameters
    ----------
    adata
        Canonical AnnData with a split (any :mod:`celltwin.split` strategy), or the path of such
        an ``.h5ad`` file (opened backed: only obs and uns are read).
    key
        The split's obs column.

    Examples
    --------
    >>> print(describe_split(adata).to_text())  # doctest: +SKIP
    """
    if not isinstance(adata, AnnData):
        backed = open_h5ad(Path(adata), backed=True)
        try:
            return describe_split(backed, key=key)
        finally:
            backed.file.close()
    if key not in adata.obs.columns:
        raise ValueError(
            f"obs has no split column {key!r} (columns: {list(adata.obs.columns)}): make a split "
            "with `celltwin split` (Python: celltwin.split.split_perturbations and friends)"
        )
    params = split_params(adata).get(key, {})
    counts = split_counts(adata.obs, key=key)
    held = {label: _held_out(params, label) for label in (TEST, VAL)}
    skip = {"strategy", "seed", "unit", TEST, VAL, "held_out_components", "categories"}
    skip |= {"n_cells", "n_perturbations", "n_control_cells", "per_context"}
    return SplitSummary(
        key=key,
        strategy=params.get("strategy"),
        seed=params.get("seed"),
        held_out={label: names for label, (names, _) in held.items()},
        held_out_kind=held[TEST][1],
        options={k: v for k, v in params.items() if k not in skip},
        n_cells=counts["n_cells"],
        n_perturbations=counts["n_perturbations"],
        n_control_cells=counts["n_control_cells"],
        per_context=counts.get("per_context", {}),
    )
