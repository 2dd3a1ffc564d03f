"""The split strategies as data, and one entry point that applies a strategy by name."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata
from anndata import AnnData

from ._combinations import split_combinations
from ._contexts import split_contexts
from ._drugs import split_doses, split_drugs
from ._perturbations import split_perturbations


@dataclass(frozen=True)
class SplitStrategy:
    """A named split strategy: the function that writes it and a one-line description."""

    name: str
    func: Callable[..., None]
    description: str

    @property
    def options(self) -> list[str]:
        """Keyword options the strategy accepts."""
        params = inspect.signature(self.func).parameters.values()
        return [p.name for p in params if p.kind is p.KEYWORD_ONLY]


STRATEGIES: dict[str, SplitStrategy] = {
    s.name: s
    for s in (
        SplitStrategy("perturbations", split_perturbations, "unseen perturbations"),
        SplitStrategy(
            "contexts", split_contexts, "unseen contexts (cell types / lines), controls kept"
        ),
        SplitStrategy(
            "combinations", split_combinations, "combinations graded by seen components (0/1/2)"
        ),
        SplitStrategy("drugs", split_drugs, "unseen drugs, all doses held out"),
        SplitStrategy("doses", split_doses, "unseen doses of seen drugs"),
    )
}


def apply_split(adata: AnnData, *, strategy: str, **options: Any) -> None:
    """Apply the split strategy called ``strategy`` with ``options``, in place.

    Parameters
    ----------
    adata
        Canonical AnnData.
    strategy
        A key of :data:`STRATEGIES` (``perturbations``, ``contexts``, ``combinations``,
        ``drugs``, ``doses``).
    **options
        Keyword options of that strategy's function (e.g. ``test=["CD14 Mono"]``, ``seed=1``).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    spec = STRATEGIES[strategy]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        flags = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in unknown)
        raise ValueError(
            f"split strategy {strategy!r} has no option {flags}; its options are "
            f"{', '.join(spec.options)}"
        )
    spec.func(adata, **options)


def split_file(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    strategy: str,
    **options: Any,
) -> Path:
    """Read a canonical ``.h5ad``, apply a split strategy, and write the result to ``out``.

    Parameters
    ----------
    path
        Canonical ``.h5ad`` (see :func:`celltwin.io.prepare`).
    out
        Output ``.h5ad``; written only when the split succeeded.
    strategy
        A key of :data:`STRATEGIES`.
    **options
        Options of the strategy (see :func:`apply_split`).
    """
    adata = anndata.read_h5ad(path)
    apply_split(adata, strategy=strategy, **options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    adata.write_h5ad(tmp)
    os.replace(tmp, out)  # atomic: no half-written file on failure
    return out
