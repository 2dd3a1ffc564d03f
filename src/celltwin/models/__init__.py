"""Models: one estimator contract, a registry, and the strong simple baselines.

Every model follows the same contract (see :class:`Model`)::

    model = get_model("linear", n_components=10)       # only stores parameters
    model.fit(adata)                                    # training cells only (obs['split'])
    pred = model.predict(controls, conditions=conditions_of(adata, split="test"))
    model.save("linear_model/")                         # JSON + safetensors, no pickle
    same = load("linear_model/")

:func:`available` lists the registered models with what they predict (cells or pseudobulk)
and which unseen conditions (perturbation, context, combination) they handle; the others are
refused with :class:`UnseenConditionError`, never guessed silently.

Peers, other groups' models run through their own packages (:class:`StateTransitionModel`,
registered as ``"state"``, and :class:`ScGenModel`, ``"scgen"``), need the ``peers`` extra
(``pip install 'celltwin[peers]'``); :func:`available` says whether it is installed.
"""

from ._base import (
    Model,
    ModelFormatError,
    NotFittedError,
    UnseenConditionError,
    as_conditions,
    conditions_of,
)
from ._baselines import AdditiveBaseline, ContextShiftBaseline, ControlBaseline, MeanBaseline
from ._fit import fit, predict
from ._linear import LinearBaseline
from ._nearest import NearestPerturbationBaseline
from ._peers import ScGenModel, StateTransitionModel
from ._persist import load
from ._registry import ModelSpec, available, get_model, get_spec
from ._signature import (
    ContextTransferLinear,
    LowRankSignatures,
    MeanOtherContexts,
    MeanOtherPerturbations,
    SignatureModel,
    SignatureModelSpec,
    available_signature_models,
    get_signature_model,
    load_signature_model,
    register_signature_model,
)
from ._signature_factor import SignatureFactor
from ._transition import TransitionModel

__all__ = [
    "AdditiveBaseline",
    "ContextShiftBaseline",
    "ContextTransferLinear",
    "ControlBaseline",
    "LinearBaseline",
    "LowRankSignatures",
    "MeanBaseline",
    "MeanOtherContexts",
    "MeanOtherPerturbations",
    "Model",
    "ModelFormatError",
    "ModelSpec",
    "NearestPerturbationBaseline",
    "NotFittedError",
    "ScGenModel",
    "SignatureFactor",
    "SignatureModel",
    "SignatureModelSpec",
    "StateTransitionModel",
    "TransitionModel",
    "UnseenConditionError",
    "as_conditions",
    "available",
    "available_signature_models",
    "conditions_of",
    "fit",
    "get_model",
    "get_signature_model",
    "get_spec",
    "load",
    "load_signature_model",
    "predict",
    "register_signature_model",
]
