"""The simulator's parameters, validated on creation, and the network builders they name."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._grn import Network, dorothea_network, random_network

#: Genetic perturbation types the simulator draws, with the range of their expression factor:
#: residual expression after knockout (nonsense-mediated decay) or CRISPRi, fold for CRISPRa.
GENETIC_STRENGTH: dict[str, tuple[float, float]] = {
    "crispr_ko": (0.05, 0.2),
    "crispri": (0.1, 0.3),
    "crispra": (3.0, 10.0),
}


@dataclass(frozen=True)
class Params:
    """Model parameters (everything except how many cells are drawn). Validated on creation."""

    n_genes: int = 200
    n_tfs: int = 20
    contexts: tuple[str, ...] = ("A", "B")
    n_perturbations: int = 10
    perturbation_types: tuple[str, ...] = ("crispr_ko",)
    combinations: int = 5
    drugs: int = 0
    drug_combinations: int = 0
    doses: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    cytokines: int = 0
    n_batches: int = 1
    library_size: float = 2_000.0
    grn: str = "random"
    confidence: str = "AB"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "contexts", tuple(str(c) for c in self.contexts))
        object.__setattr__(self, "perturbation_types", tuple(self.perturbation_types))
        object.__setattr__(self, "doses", tuple(float(d) for d in self.doses))
        for key in ("n_genes", "n_tfs", "n_batches"):
            check_int(key, getattr(self, key), minimum=1)
        for key in ("n_perturbations", "combinations", "drugs", "drug_combinations", "cytokines"):
            check_int(key, getattr(self, key), minimum=0)
        check_int("seed", self.seed, minimum=0)
        if self.n_tfs >= self.n_genes:
            raise ValueError(
                f"'n_tfs' must be smaller than 'n_genes' (got n_tfs={self.n_tfs}, "
                f"n_genes={self.n_genes}): lower n_tfs or raise n_genes"
            )
        if self.n_perturbations > self.n_genes:
            raise ValueError(
                f"'n_perturbations' must be <= n_genes={self.n_genes} (got "
                f"{self.n_perturbations}): each perturbation targets a different gene"
            )
        if not self.contexts or len(set(self.contexts)) != len(self.contexts):
            raise ValueError(f"'contexts' must be non-empty and unique (got {self.contexts!r})")
        bad = [t for t in self.perturbation_types if t not in GENETIC_STRENGTH]
        if bad or not self.perturbation_types:
            raise ValueError(
                f"'perturbation_types' must be a non-empty tuple of {sorted(GENETIC_STRENGTH)} "
                f"(got {self.perturbation_types!r})"
            )
        if self.drugs and not self.doses:
            raise ValueError("'doses' must hold at least one dose (in uM) when drugs > 0")
        if any(not math.isfinite(d) or d <= 0 for d in self.doses):
            raise ValueError(f"'doses' must be finite and > 0 uM (got {self.doses!r})")
        if len(set(self.doses)) != len(self.doses):
            raise ValueError(f"'doses' must be unique (got {self.doses!r})")
        if self.drug_combinations and self.drugs < 2:
            raise ValueError(
                f"'drug_combinations' is {self.drug_combinations} but drugs={self.drugs}: "
                "combinations need at least 2 drugs"
            )
        if self.cytokines and self.n_tfs < 1:
            raise ValueError("'cytokines' need at least one TF (n_tfs >= 1)")
        if not (math.isfinite(self.library_size) and self.library_size >= 10):
            raise ValueError(f"'library_size' must be >= 10 counts (got {self.library_size!r})")
        if self.grn not in GRN_BUILDERS:
            raise ValueError(f"'grn' must be one of {sorted(GRN_BUILDERS)} (got {self.grn!r})")
        if not self.confidence or set(self.confidence) - set("ABCDE"):
            raise ValueError(
                f"'confidence' must be DoRothEA levels such as 'AB' or 'ABC' "
                f"(got {self.confidence!r})"
            )

    def to_uns(self) -> dict[str, Any]:
        """The parameters as h5ad-writable values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def check_int(key: str, value: Any, *, minimum: int) -> None:
    """Raise a ValueError naming ``key`` unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"'{key}' must be an integer >= {minimum} (got {value!r})")


#: Network builders by name (the ``grn`` parameter).
GRN_BUILDERS: dict[str, Callable[[Params, np.random.Generator], Network]] = {
    "random": lambda p, rng: random_network(n_genes=p.n_genes, n_tfs=p.n_tfs, rng=rng),
    "dorothea": lambda p, rng: dorothea_network(
        n_genes=p.n_genes, n_tfs=p.n_tfs, rng=rng, confidence=p.confidence
    ),
}
