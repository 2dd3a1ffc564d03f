"""What a registry entry says about a model: :class:`ModelSpec`, and the pip extras."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Final

from ._model import Model, PredictionKind
from ._params import fit_arguments

#: What a model may be asked to predict beyond the training conditions.
UNSEEN_KINDS: Final = frozenset({"perturbation", "context", "combination"})
#: The pip extra of the peer models (other groups' models run through celltwin).
PEERS_EXTRA: Final = "peers"
#: Import names of the packages each pip extra of celltwin brings (checked with
#: :func:`importlib.util.find_spec`, which finds a package without importing it).
EXTRA_MODULES: Final[dict[str, tuple[str, ...]]] = {
    PEERS_EXTRA: ("state", "cell_load", "scgen", "scvi"),
}


@dataclass(frozen=True)
class ModelSpec:
    """A registered model and what it can do.

    Attributes
    ----------
    name
        Registry name (``get_model(name)``), equal to ``cls.name``.
    cls
        The :class:`Model` subclass (a :class:`CellModel` or a :class:`SignatureModel`).
    description
        One line.
    reference
        Where the method comes from.
    predicts
        ``"cells"`` (one row per generated cell), ``"pseudobulk"`` (one mean per condition) or
        ``"signatures"`` (one gene-score row per (context, perturbation) pair).
    handles_unseen
        Which unseen conditions it predicts instead of refusing: a subset of
        ``{"perturbation", "context", "combination"}``. For cell models, "perturbation": a
        perturbation without training cells anywhere; "context": a context without perturbed
        training cells; "combination": a combination not trained on whose components were. For
        signature models, "perturbation": a perturbation without any training signature;
        "context": a perturbation asked for in a context where it has no training signature
        (it has some elsewhere), the signature-transfer task.
    extra
        The pip extra of celltwin the model needs (``pip install 'celltwin[<extra>]'``), one of
        :data:`EXTRA_MODULES`; ``None`` when the core dependencies suffice.
    """

    name: str
    cls: type[Model]
    description: str
    reference: str
    predicts: PredictionKind
    handles_unseen: frozenset[str] = field(default_factory=frozenset)
    extra: str | None = None

    def __post_init__(self) -> None:
        if self.cls.name != self.name or self.cls.predicts != self.predicts:
            raise ValueError(
                f"ModelSpec {self.name!r}: cls {self.cls.__name__} declares name="
                f"{self.cls.name!r}, predicts={self.cls.predicts!r}; the spec must agree."
            )
        if not set(self.handles_unseen) <= UNSEEN_KINDS:
            raise ValueError(
                f"ModelSpec {self.name!r}: handles_unseen must be a subset of "
                f"{sorted(UNSEEN_KINDS)} (got {sorted(self.handles_unseen)})."
            )
        if self.extra is not None and self.extra not in EXTRA_MODULES:
            raise ValueError(
                f"ModelSpec {self.name!r}: extra must be None or one of {sorted(EXTRA_MODULES)} "
                f"(got {self.extra!r})."
            )
        object.__setattr__(self, "handles_unseen", frozenset(self.handles_unseen))

    @property
    def install_hint(self) -> str:
        """The command installing what the model needs (``""`` without an extra)."""
        return f"pip install 'celltwin[{self.extra}]'" if self.extra else ""

    @property
    def fit_arguments(self) -> list[str]:
        """Keyword arguments the model's ``fit`` takes after the data (its own ``fit``'s,
        then the fit parameters its ``_fit`` names, e.g. ``perturbation_features``)."""
        return fit_arguments(self.cls)

    def missing_modules(self) -> list[str]:
        """Packages of the model's extra that cannot be found (none are imported)."""
        if self.extra is None:
            return []
        return [m for m in EXTRA_MODULES[self.extra] if importlib.util.find_spec(m) is None]

    @property
    def installed(self) -> bool:
        """Whether every package of the model's extra is installed (always, without one)."""
        return not self.missing_modules()

    def require(self) -> None:
        """Raise ImportError, saying what to install, when the model's extra is missing."""
        missing = self.missing_modules()
        if missing:
            raise ImportError(
                f"the {self.name!r} model needs the package(s) {missing} of celltwin's "
                f"{self.extra!r} extra, which are not installed. Fix: {self.install_hint}."
            )
