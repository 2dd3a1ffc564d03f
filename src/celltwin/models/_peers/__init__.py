"""Peer models: other groups' perturbation models run inside celltwin's model contract.

:class:`StateTransitionModel` (Arc Institute's State) and :class:`ScGenModel` (scGen) fit on the
training cells of a split and predict canonical AnnData like every celltwin model. Their
packages are optional: ``pip install 'celltwin[peers]'``. Importing this module imports none of
them; fitting or predicting without them raises ImportError saying what to install.
"""

from ._scgen import ScGenModel
from ._state import StateTransitionModel

__all__ = ["ScGenModel", "StateTransitionModel"]
