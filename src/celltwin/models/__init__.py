"""Models: one estimator contract, one registry, one persistence, and the strong baselines.

Every model follows the same contract (see :class:`Model`)::

    model = get_model("linear", n_components=10)       # only stores parameters
    model.fit(adata)                                    # training cells only (obs['split'])
    pred = model.predict(controls, conditions=conditions_of(adata, split="test"))
    model.save("linear_model/")                         # JSON + safetensors, no pickle
    same = load("linear_model/")

Three kinds of model share it, named by what they predict (``ModelSpec.predicts``):
``"cells"`` and ``"pseudobulk"`` (:class:`CellModel`: from control cells) and ``"signatures"``
(:class:`SignatureModel`: gene-score rows of (context, perturbation) pairs, fitted on other
signatures, ``model.fit(scores)`` then ``model.predict(conditions=[("RPE1", "MED1")])``).

:func:`available` lists every registered model with what it predicts and which unseen
conditions (perturbation, context, combination) it handles; the others are refused with
:class:`UnseenConditionError`, never guessed silently. :func:`register_model` adds a model;
:func:`celltwin.testing.check_model` checks that it follows the contract.

Peers, other groups' models run through their own packages (:class:`StateTransitionModel`,
registered as ``"state"``, and :class:`ScGenModel`, ``"scgen"``), need the ``peers`` extra
(``pip install 'celltwin[peers]'``); :func:`available` says whether it is installed.
"""

from ._baselines import AdditiveBaseline, ContextShiftBaseline, ControlBaseline, MeanBaseline
from ._cell import CellModel
from ._conditions import (
    ConditionKey,
    as_conditions,
    condition_label,
    conditions_of,
    dose_components,
)
from ._context_transfer import ContextTransferLinear
from ._dose_response import DOSE_MODELS, DoseResponse
from ._dose_signatures import (
    DoseSignatureModel,
    LinearLogDose,
    MeanOtherDrugs,
    NearestDoseSignature,
)
from ._errors import (
    ModelFormatError,
    NotFittedError,
    UnpredictableConditionsError,
    UnseenConditionError,
)
from ._fit import fit, predict
from ._linear import LinearBaseline
from ._low_rank import LowRankSignatures
from ._model import Model
from ._nearest import NearestPerturbationBaseline
from ._nearest_dose import NearestDoseBaseline
from ._peers import ScGenModel, StateTransitionModel
from ._predict_effects import predict_effects
from ._refusals import refusals_path
from ._registry import MODELS, available, get_model, get_spec, load, register_model
from ._signature_blend import SignatureBlend
from ._signature_factor import SignatureFactor
from ._signature_means import MeanOtherContexts, MeanOtherPerturbations
from ._signature_model import SignatureModel
from ._spec import PEERS_EXTRA, ModelSpec
from ._transition import TransitionModel

__all__ = [
    "DOSE_MODELS",
    "MODELS",
    "PEERS_EXTRA",
    "AdditiveBaseline",
    "CellModel",
    "ConditionKey",
    "ContextShiftBaseline",
    "ContextTransferLinear",
    "ControlBaseline",
    "DoseResponse",
    "DoseSignatureModel",
    "LinearBaseline",
    "LinearLogDose",
    "LowRankSignatures",
    "MeanBaseline",
    "MeanOtherContexts",
    "MeanOtherDrugs",
    "MeanOtherPerturbations",
    "Model",
    "ModelFormatError",
    "ModelSpec",
    "NearestDoseBaseline",
    "NearestDoseSignature",
    "NearestPerturbationBaseline",
    "NotFittedError",
    "ScGenModel",
    "SignatureBlend",
    "SignatureFactor",
    "SignatureModel",
    "StateTransitionModel",
    "TransitionModel",
    "UnpredictableConditionsError",
    "UnseenConditionError",
    "as_conditions",
    "available",
    "condition_label",
    "conditions_of",
    "dose_components",
    "fit",
    "get_model",
    "get_spec",
    "load",
    "predict",
    "predict_effects",
    "refusals_path",
    "register_model",
]
