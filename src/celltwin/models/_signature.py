"""Transitional: the old signature-model registry names, for ``benchmark`` until it moves.

Signature models are registered in :data:`celltwin.models.MODELS` (``predicts ==
"signatures"``) and created with :func:`celltwin.models.get_model`. Delete this module once
nothing imports it.
"""

from __future__ import annotations

from typing import Final

from ._registry import MODELS, get_model
from ._spec import ModelSpec

#: The registered signature models, by name (a snapshot taken at import).
SIGNATURE_MODELS: Final[dict[str, ModelSpec]] = {
    name: spec for name, spec in MODELS.items() if spec.predicts == "signatures"
}
get_signature_model = get_model

__all__ = ["SIGNATURE_MODELS", "get_signature_model"]
