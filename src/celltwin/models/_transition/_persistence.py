"""What a saved ``transition`` model holds (arrays in safetensors, the rest in JSON) and the
checks a loaded one must pass (:meth:`TransitionModel._check_state`)."""

from __future__ import annotations

from typing import Final

import numpy as np

from .._errors import ModelFormatError
from .._model import expect_shape
from ._domain import check_domain_state
from ._estimate import VIEWS
from ._network import LearnedCorrection

_ARRAYS: Final = (
    "delta_",
    "pca_mean_",
    "pca_components_",
    "context_summary_",
    "error_var_",
    "member_weights_",
    "lin_pert_",
    "lin_ctrl_",
    "fold_share_",
    "expressed_level_",
)
#: Arrays of the cell states, saved when the model has them.
_STATE_ARRAYS: Final = (
    "states_latent_",
    "states_context_",
    "states_label_",
    "states_n_",
    "states_index_",
    "states_effects_",
    "states_cells_",
)
JSON_NAMES: Final = (
    "n_latent_",
    "latent_scale_",
    "tau_",
    "tau_losses_",
    "dose_bandwidth_",
    "dose_losses_",
    "components_",
    "feature_source_",
    "feature_names_",
    "param_shapes_",
    "training_",
    "calibration_",
    "trained_views_",
    "n_state_cells_",
    "domain_",
)


def array_names(model: LearnedCorrection) -> tuple[str, ...]:
    """The fitted arrays of ``model``, in the order they are saved."""
    names: tuple[str, ...] = _ARRAYS
    names += _STATE_ARRAYS if model.n_state_cells_ else ()
    return names + (("feature_matrix_",) if model.feature_names_ else ())


def check_state(model: LearnedCorrection) -> None:
    """Raise :class:`ModelFormatError` when a loaded model's arrays do not fit together."""
    n_genes, k = len(model.genes_), model.n_latent_
    expect_shape(model, "delta_", (len(model.conditions_), n_genes))
    expect_shape(model, "pca_mean_", (n_genes,))
    expect_shape(model, "pca_components_", (k, n_genes))
    expect_shape(model, "context_summary_", (len(model.contexts_), 2 * k))
    expect_shape(model, "error_var_", (len(VIEWS), n_genes))
    expect_shape(model, "lin_pert_", (len(model.conditions_), n_genes))
    expect_shape(model, "lin_ctrl_", (len(model.contexts_), n_genes))
    expect_shape(model, "fold_share_", (n_genes,))
    expect_shape(model, "expressed_level_", (n_genes,))
    check_domain_state(model.domain_)
    if model.n_state_cells_:
        _check_states(model)
    if model.feature_names_:
        expect_shape(
            model,
            "feature_matrix_",
            (len(model.feature_names_), model.feature_matrix_.shape[1]),
        )
    _check_network(model)


def _check_states(model: LearnedCorrection) -> None:
    n, k, n_genes = model.n_state_cells_, model.n_latent_, len(model.genes_)
    expect_shape(model, "states_latent_", (n, k))
    expect_shape(model, "states_context_", (n,))
    expect_shape(model, "states_label_", (n,))
    expect_shape(model, "states_n_", (len(model.contexts_),))
    expect_shape(model, "states_index_", (len(model.states_effects_), 2))
    expect_shape(model, "states_effects_", (len(model.states_index_), n_genes))
    expect_shape(model, "states_cells_", (len(model.states_index_), 2))


def _check_network(model: LearnedCorrection) -> None:
    n_params = sum(int(np.prod(shape)) for _, shape in model.param_shapes_)
    expect_shape(model, "member_weights_", (model.member_weights_.shape[0], n_params))
    expected = [[k_, list(v.shape)] for k_, v in model._new_module().state_dict().items()]
    if expected != [[str(a), list(b)] for a, b in model.param_shapes_]:
        raise ModelFormatError(
            "shape mismatch in saved 'transition' model: the network layout in model.json "
            "does not match its parameters. The directory is damaged or was edited."
        )
