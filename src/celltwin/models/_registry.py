"""The model registry: one :class:`ModelSpec` per model, as data."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from ._base import Model, PredictionKind
from ._baselines import AdditiveBaseline, ContextShiftBaseline, ControlBaseline, MeanBaseline
from ._linear import LinearBaseline
from ._nearest import NearestPerturbationBaseline
from ._peers import ScGenModel, StateTransitionModel
from ._transition import TransitionModel

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
        The :class:`Model` subclass.
    description
        One line.
    reference
        Where the method comes from.
    predicts
        ``"cells"`` (one row per generated cell) or ``"pseudobulk"`` (one mean per condition).
    handles_unseen
        Which unseen conditions it predicts instead of refusing: a subset of
        ``{"perturbation", "context", "combination"}``. "perturbation": a perturbation without
        training cells anywhere; "context": a context without perturbed training cells;
        "combination": a combination not trained on whose components were.
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


_AHLMANN_ELTZE = "Ahlmann-Eltze, Huber & Anders, Nat Methods 22:1657 (2025)"

_SPECS: Final = (
    ModelSpec(
        name="control",
        cls=ControlBaseline,
        description="The context's control cells, unchanged (no effect).",
        reference="Lower bound of every perturbation benchmark; e.g. " + _AHLMANN_ELTZE,
        predicts="cells",
        handles_unseen=frozenset({"perturbation", "context", "combination"}),
    ),
    ModelSpec(
        name="mean",
        cls=MeanBaseline,
        description="Control cells shifted by the equal-weight mean of the training effects.",
        reference=_AHLMANN_ELTZE + "; Viñas Torné et al. (Systema), Nat Biotechnol 2025; "
        "cell-eval build_base_mean_adata(as_delta=True)",
        predicts="cells",
        handles_unseen=frozenset({"perturbation", "context", "combination"}),
    ),
    ModelSpec(
        name="additive",
        cls=AdditiveBaseline,
        description="Control cells shifted by the sum of the components' single effects.",
        reference="Norman et al., Science 2019; " + _AHLMANN_ELTZE,
        predicts="cells",
        handles_unseen=frozenset({"combination"}),
    ),
    ModelSpec(
        name="linear",
        cls=LinearBaseline,
        description="Bilinear ridge model Y ≈ G W Pᵀ + b on the training pseudobulk effects.",
        reference=_AHLMANN_ELTZE + "; github.com/const-ae/linear_perturbation_prediction-Paper",
        predicts="pseudobulk",
        handles_unseen=frozenset({"perturbation", "combination"}),
    ),
    ModelSpec(
        name="context_shift",
        cls=ContextShiftBaseline,
        description="Control cells shifted by the perturbation's mean effect in other contexts.",
        reference="Lotfollahi, Wolf & Theis (scGen), Nat Methods 2019, without the VAE",
        predicts="cells",
        handles_unseen=frozenset({"context"}),
    ),
    ModelSpec(
        name="nearest_perturbation",
        cls=NearestPerturbationBaseline,
        description="Control cells shifted by the effect of the most similar training perturbation.",
        reference="Nearest-neighbour transfer in the gene embedding of " + _AHLMANN_ELTZE,
        predicts="cells",
        handles_unseen=frozenset({"perturbation", "combination"}),
    ),
    ModelSpec(
        name="transition",
        cls=TransitionModel,
        description=(
            "Hybrid: similarity-weighted classical effect estimate plus a learned per-cell latent "
            "correction trained with a distribution loss; deep ensemble with calibrated intervals."
        ),
        reference=("Lotfollahi et al. (scGen) 2019; Adduri et al. (State) 2025; " + _AHLMANN_ELTZE),
        predicts="cells",
        handles_unseen=frozenset({"perturbation", "context", "combination"}),
    ),
    # Peers: other groups' models, run through their own packages (the "peers" extra).
    # Both encode the perturbation by identity, so only perturbations with training cells are
    # predicted; a context enters only through its control cells, so an unseen context is.
    ModelSpec(
        name="state",
        cls=StateTransitionModel,
        description=(
            "Arc Institute's State Transition model (set transformer trained with an energy "
            "distance), all-gene output, trained through arc-state and cell-load."
        ),
        reference="Adduri et al. (State), bioRxiv 2025; github.com/ArcInstitute/state",
        predicts="cells",
        handles_unseen=frozenset({"context"}),
        extra=PEERS_EXTRA,
    ),
    ModelSpec(
        name="scgen",
        cls=ScGenModel,
        description="scGen: VAE latent arithmetic, one model per perturbation (scgen 2.1.0).",
        reference="Lotfollahi, Wolf & Theis, Nat Methods 16:715 (2019); github.com/theislab/scgen",
        predicts="cells",
        handles_unseen=frozenset({"context"}),
        extra=PEERS_EXTRA,
    ),
)

#: Registered models by name.
MODELS: Final[dict[str, ModelSpec]] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` registered as ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(
            f"no model named {name!r}. Fix: use one of {sorted(MODELS)} "
            "(see celltwin.models.available())."
        ) from None


def get_model(name: str, **params: Any) -> Model:
    """Create the model registered as ``name`` with the given parameters (not fitted).

    Examples
    --------
    >>> get_model("linear", n_components=5)
    LinearBaseline(n_components=5, ridge=0.1, embedding='auto')

    Raises
    ------
    ImportError
        The model needs a pip extra that is not installed (the message says what to install).
    """
    spec = get_spec(name)
    spec.require()
    return spec.cls(**params)


def available() -> pd.DataFrame:
    """Table of the registered models.

    Returns
    -------
    pandas.DataFrame
        One row per model, indexed by ``name``, with columns ``description``, ``reference``,
        ``predicts``, ``handles_unseen`` (sorted, comma-separated), ``class``, ``extra`` (the
        pip extra it needs, ``""`` for none) and ``installed`` (whether that extra's packages
        are found; they are not imported).
    """
    return pd.DataFrame(
        {
            "description": [s.description for s in _SPECS],
            "reference": [s.reference for s in _SPECS],
            "predicts": [s.predicts for s in _SPECS],
            "handles_unseen": [",".join(sorted(s.handles_unseen)) for s in _SPECS],
            "class": [s.cls.__name__ for s in _SPECS],
            "extra": [s.extra or "" for s in _SPECS],
            "installed": [s.installed for s in _SPECS],
        },
        index=pd.Index([s.name for s in _SPECS], name="name"),
    )
