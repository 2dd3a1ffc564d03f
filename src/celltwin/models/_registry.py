"""The model registry: one :class:`ModelSpec` per model, as data, and loading by name.

Every model of every kind is registered here: cell and pseudobulk models, the peers (behind the
``peers`` extra) and the signature models. :func:`load` reads any saved registered model.
"""

from __future__ import annotations

import os
from typing import Any, Final

import pandas as pd

from ._baselines import AdditiveBaseline, ContextShiftBaseline, ControlBaseline, MeanBaseline
from ._context_transfer import ContextTransferLinear
from ._errors import ModelFormatError
from ._linear import LinearBaseline
from ._low_rank import LowRankSignatures
from ._model import Model
from ._nearest import NearestPerturbationBaseline
from ._nearest_dose import NearestDoseBaseline
from ._peers import ScGenModel, StateTransitionModel
from ._persist import read_model
from ._signature_blend import SignatureBlend
from ._signature_factor import SignatureFactor
from ._signature_means import MeanOtherContexts, MeanOtherPerturbations
from ._spec import PEERS_EXTRA, ModelSpec
from ._transition import TransitionModel

__all__ = [
    "MODELS",
    "PEERS_EXTRA",
    "ModelSpec",
    "available",
    "get_model",
    "get_spec",
    "load",
    "register_model",
]

_AHLMANN_ELTZE = "Ahlmann-Eltze, Huber & Anders, Nat Methods 22:1657 (2025)"

_CELL_SPECS: Final = (
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
        name="nearest_dose",
        cls=NearestDoseBaseline,
        description="Control cells shifted by the drug's training effect at the nearest dose.",
        reference="Nearest-neighbour interpolation in log dose (baseline of unseen doses, "
        "e.g. Hetzel et al. (chemCPA), NeurIPS 2022)",
        predicts="cells",
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

# Signature models: one gene-score row per (context, perturbation), from other signatures.
_SIGNATURE_SPECS: Final = (
    ModelSpec(
        name="mean_other_contexts",
        cls=MeanOtherContexts,
        description="The perturbation's mean signature over the other contexts measuring it.",
        reference="Cross-context reference of signature transfer (sigrecon; Szalata et al. 2024)",
        predicts="signatures",
        handles_unseen=frozenset({"context"}),
    ),
    ModelSpec(
        name="mean_other_perturbations",
        cls=MeanOtherPerturbations,
        description="The target context's mean signature over its training perturbations.",
        reference="Ahlmann-Eltze, Huber & Anders, Nat Methods 2025 (mean baseline)",
        predicts="signatures",
        handles_unseen=frozenset({"context", "perturbation"}),
    ),
    ModelSpec(
        name="low_rank",
        cls=LowRankSignatures,
        description="Low-rank completion mu[c] + U[p] W[c] of the context x perturbation x gene "
        "tensor (ALS, rank by internal validation).",
        reference="Mazumder, Hastie & Tibshirani, JMLR 2010 (soft-impute)",
        predicts="signatures",
        handles_unseen=frozenset({"context"}),
    ),
    ModelSpec(
        name="context_transfer_linear",
        cls=ContextTransferLinear,
        description="Ridge map from source-context signatures to the target context, learned on "
        "the perturbations measured in both (shrunk towards a scaled copy).",
        reference="Hoerl & Kennard 1970; few-shot setting of Szalata et al. 2024",
        predicts="signatures",
        handles_unseen=frozenset({"context"}),
    ),
    ModelSpec(
        name="signature_blend",
        cls=SignatureBlend,
        description="context_transfer_linear blended with the target context's mean signature, "
        "one weight per context chosen on out-of-fold training rows by rank metrics.",
        reference="Ridge transfer (Hoerl & Kennard 1970) stacked with the mean baseline "
        "(Ahlmann-Eltze et al. 2025); stacking as in Wolpert 1992",
        predicts="signatures",
        handles_unseen=frozenset({"context"}),
    ),
    ModelSpec(
        name="signature_factor",
        cls=SignatureFactor,
        description="context_transfer_linear plus a torch factor model of its residual: "
        "context factors x (learned + prior-feature) perturbation factors, early-stopped.",
        reference="Hybrid of ridge transfer (Hoerl & Kennard 1970) and factorisation with side "
        "features (e.g. Zhou et al. 2012; Roohani et al. 2024 GEARS priors)",
        predicts="signatures",
        handles_unseen=frozenset({"context"}),
    ),
)


#: Registered models by name, in the order :func:`available` lists them (add more with
#: :func:`register_model`).
MODELS: Final[dict[str, ModelSpec]] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry and return its spec.

    Names are unique: registering a taken name raises :class:`ValueError`.

    Examples
    --------
    >>> from celltwin.models import MeanBaseline
    >>> class MyMean(MeanBaseline):
    ...     name = "my_mean"
    >>> spec = register_model(ModelSpec("my_mean", MyMean, "Mine.", "Me", predicts="cells"))
    >>> get_model("my_mean")
    MyMean()
    >>> del MODELS["my_mean"]
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register_model takes a ModelSpec (got {type(spec).__name__}).")
    if spec.name in MODELS:
        raise ValueError(
            f"a model named {spec.name!r} is already registered. Fix: choose another name."
        )
    MODELS[spec.name] = spec
    return spec


for _spec in (*_CELL_SPECS, *_SIGNATURE_SPECS):
    register_model(_spec)


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
    >>> get_model("low_rank", rank=3)
    LowRankSignatures(rank=3, ridge=None, ranks=(1, 2, 4, 8, 16, 32, 64), ridges=(0.1, 0.3), validation_fraction=0.2, max_iter=100, tol=1e-05, seed=0)

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
        ``predicts`` (``cells``, ``pseudobulk`` or ``signatures``), ``handles_unseen``
        (sorted, comma-separated), ``class``, ``extra`` (the pip extra it needs, ``""`` for
        none) and ``installed`` (whether that extra's packages are found; they are not
        imported).
    """
    specs = list(MODELS.values())
    return pd.DataFrame(
        {
            "description": [s.description for s in specs],
            "reference": [s.reference for s in specs],
            "predicts": [s.predicts for s in specs],
            "handles_unseen": [",".join(sorted(s.handles_unseen)) for s in specs],
            "class": [s.cls.__name__ for s in specs],
            "extra": [s.extra or "" for s in specs],
            "installed": [s.installed for s in specs],
        },
        index=pd.Index([s.name for s in specs], name="name"),
    )


def load(path: str | os.PathLike[str]) -> Model:
    """Load a model saved with :meth:`Model.save`, whichever registered model it is.

    ``model.json`` names the model; its class comes from :data:`MODELS`.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a directory.
    ModelFormatError
        When ``model.json`` or the weights are missing, not valid, edited, of another format
        version, fail their checksum, or do not fit together (names, shapes).
    """
    return read_model(path, _registered_class)


def _registered_class(name: str) -> type[Model]:
    if name not in MODELS:
        raise ModelFormatError(f"unknown model {name!r} (registered: {sorted(MODELS)})")
    return MODELS[name].cls
